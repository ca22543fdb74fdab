"""Carts over HTTP: a customer's lines at one shop, priced live from the menu, checked out into an
order by the same path (and Idempotency-Key rules) as POST /v1/orders."""

from __future__ import annotations

import datetime as dt
import uuid

from aiohttp import web
from msgspec import UNSET

from beanpay import cachekeys as keys
from beanpay.api.body import decode_body, decode_query
from beanpay.api.cart_schemas import Cart, CartCheckout, CartItemAdd, CartItemPatch, CartLine, CartQuery
from beanpay.api.guard import needs
from beanpay.api.http import actor, json, path_uuid, who
from beanpay.api.idempotency import key_of, mark_recorded, mutation, replay
from beanpay.api.orders import _asset, _rate, _utc, placed
from beanpay.api.routing import Routes
from beanpay.api.schemas import FieldError, Order, encoder
from beanpay.api.state import BTC_ACCOUNT, cache, pool, settings
from beanpay.engine import carts, orders
from beanpay.errors import Forbidden, InvalidInput, NotFound
from beanpay.idempotency import Answer

routes = Routes()
POLICY = needs("orders:create", "customers, for their own cart", customers=True)


def _customer(request: web.Request) -> uuid.UUID:
    c = who(request)
    if c.kind != "customer" or c.id is None:
        raise Forbidden("carts are for customers (sign in as one); integrations place orders directly")
    return c.id


def _ttl(request: web.Request) -> dt.timedelta:
    return dt.timedelta(seconds=settings(request).cart_ttl_seconds)


def _out(priced: carts.PricedCart) -> Cart:
    lines = [CartLine(ln.item.id, ln.item.product_id, ln.name, ln.item.quantity, ln.item.line().customizations,
                      ln.priced.unit_price if ln.priced else None, ln.priced.total if ln.priced else None,
                      [FieldError(p["field"], p["message"]) for p in ln.problems]) for ln in priced.lines]
    cart = priced.cart
    return Cart(priced.shop_id, priced.currency, lines, priced.total, priced.orderable,
                cart.expires_at if cart else None, cart.version if cart else None)


async def _shop_of_item(request: web.Request, item_id: uuid.UUID, user_id: uuid.UUID) -> uuid.UUID:
    async with pool(request).acquire() as conn:
        shop = await carts.shop_of_item(conn, item_id, user_id)
    if shop is None:
        raise NotFound("no such line in your cart", item_id=str(item_id))
    return shop


@routes.add("GET", "/v1/cart", summary="My cart at a shop, priced from the menu now", tag="carts", query=CartQuery,
            response=Cart, policy=POLICY, errors=(401, 403, 404, 422))
async def get_cart(request: web.Request) -> web.Response:
    user_id = _customer(request)
    q = decode_query(request, CartQuery)
    async with pool(request).acquire() as conn:
        return json(_out(await carts.read(conn, user_id, q.shop_id)))


@routes.add("POST", "/v1/cart/items", summary="Add a line to my cart (checked against the menu as an order is)",
            tag="carts", body=CartItemAdd, response=Cart, status=201, policy=POLICY, errors=(400, 401, 403, 404, 422))
async def add_cart_item(request: web.Request) -> web.Response:
    user_id = _customer(request)
    body = await decode_body(request, CartItemAdd)
    line = orders.Line(body.product_id, body.quantity, dict(body.customizations))
    async with mutation(request) as m:
        await carts.add(m.conn, user_id, body.shop_id, line, _ttl(request))
        return await m.respond(json(_out(await carts.read(m.conn, user_id, body.shop_id)), status=201))


@routes.add("PATCH", "/v1/cart/items/{item_id}", summary="Change a line's quantity or options", tag="carts",
            body=CartItemPatch, response=Cart, policy=POLICY, errors=(400, 401, 403, 404, 422))
async def change_cart_item(request: web.Request) -> web.Response:
    user_id = _customer(request)
    item_id = path_uuid(request, "item_id")
    body = await decode_body(request, CartItemPatch)
    shop_id = await _shop_of_item(request, item_id, user_id)
    async with pool(request).transaction() as conn:
        await carts.change(conn, user_id, shop_id, item_id,
                           quantity=None if body.quantity is UNSET else body.quantity,
                           customizations=None if body.customizations is UNSET else dict(body.customizations),
                           ttl=_ttl(request))
        return json(_out(await carts.read(conn, user_id, shop_id)))


@routes.add("DELETE", "/v1/cart/items/{item_id}", summary="Take a line out of my cart", tag="carts", response=Cart,
            policy=POLICY, errors=(401, 403, 404))
async def remove_cart_item(request: web.Request) -> web.Response:
    user_id = _customer(request)
    item_id = path_uuid(request, "item_id")
    shop_id = await _shop_of_item(request, item_id, user_id)
    async with pool(request).transaction() as conn:
        await carts.remove(conn, user_id, shop_id, item_id)
        return json(_out(await carts.read(conn, user_id, shop_id)))


@routes.add("DELETE", "/v1/cart", summary="Empty my cart at a shop", tag="carts", query=CartQuery, status=204,
            policy=POLICY, errors=(401, 403, 422))
async def empty_cart(request: web.Request) -> web.Response:
    user_id = _customer(request)
    q = decode_query(request, CartQuery)
    async with pool(request).transaction() as conn:
        await carts.clear(conn, user_id, q.shop_id)
    return web.Response(status=204)


@routes.add("POST", "/v1/cart/checkout", summary="Turn my cart into an order and get its payment request",
            tag="carts", body=CartCheckout, response=Order, status=201, policy=POLICY,
            errors=(400, 401, 403, 404, 409, 422, 503))
async def checkout_cart(request: web.Request) -> web.Response:
    user_id = _customer(request)
    body = await decode_body(request, CartCheckout)
    async with pool(request).acquire() as conn:
        current = await carts.read(conn, user_id, body.shop_id)
    if current.cart is None or not current.lines:
        raise InvalidInput("the cart is empty", [{"field": "items", "message": "add something first"}])
    asset = _asset(request, body.payment.chain, body.payment.asset)
    secret = settings(request).jwt_secret or ""
    delivery = orders.Delivery(body.order_type, _utc(body.pickup_time), body.delivery_address,
                               body.special_instructions)
    # a retry of a checkout that went through is answered before this handler runs (the cart is gone by
    # then): the key is looked up first, and recorded by the order's own statement
    result = await orders.create_order(
        pool(request), settings(request), user_id=user_id, shop_id=body.shop_id,
        lines=[ln.item.line() for ln in current.lines], delivery=delivery, asset=asset,
        rate_for=lambda fiat: _rate(request, asset, fiat), btc_account=request.app[BTC_ACCOUNT],
        actor=actor(request), key=key_of(request), respond=lambda new: encoder.encode(placed(new, secret)),
        then=carts.checked_out(current.cart))
    if isinstance(result, Answer):
        return replay(result, request)
    mark_recorded(request)
    if result.held:
        await cache(request).invalidate(*(keys.supply_key(i) for i in result.held), keys.supplies_key(body.shop_id))
    return json(placed(result, secret), status=201, headers={"Location": f"/v1/orders/{result.order.id}"})

