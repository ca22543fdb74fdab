"""Orders over HTTP: place (with its payment request), read, list, change while unpaid, cancel, the
shop's progress moves, and the merchant's resolution of a payment exception."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from aiohttp import web
from msgspec import UNSET

from beanpay import cachekeys as keys
from beanpay.api.body import check_version, decode_body, decode_query
from beanpay.api.http import actor, claims, json, path_uuid, require
from beanpay.api.routing import Routes
from beanpay.api.rows import KeysetPage
from beanpay.api.schemas import (
    Order,
    OrderCreate,
    OrderItemOut,
    OrderMove,
    OrderPatch,
    OrderQuery,
    OrderSummary,
    Page,
    PaymentRequest,
    Resolution,
)
from beanpay.api.state import BTC_ACCOUNT, cache, pool, rates, settings
from beanpay.db import Connection, transaction
from beanpay.engine import orders, settlement
from beanpay.engine.assets import Asset, payable_assets
from beanpay.engine.prices.providers import Rate, RateUnavailable
from beanpay.errors import Forbidden, InvalidInput, NotFound, Unavailable
from beanpay.money import base_units
from beanpay.tokens import Claims

routes = Routes()

STAFF = ("staff", "merchant")


async def _rate(request: web.Request, asset: Asset, fiat: str) -> Rate:
    try:
        return await rates(request).get(asset.symbol, fiat)
    except RateUnavailable as exc:
        raise Unavailable(f"no fresh {asset.symbol}/{fiat} rate; try again shortly", reason=str(exc)) from None


def _asset(request: web.Request, chain: str, symbol: str) -> Asset:
    asset = payable_assets(settings(request)).get((chain, symbol))
    if asset is None:
        choices = ", ".join(f"{c}/{a}" for c, a in payable_assets(settings(request)))
        raise InvalidInput("unsupported payment asset",
                           [{"field": "payment.asset", "message": f"{chain}/{symbol} is not accepted; use {choices}"}])
    return asset


def _lines(items: list[Any]) -> list[orders.Line]:
    return [orders.Line(i.product_id, i.quantity, dict(i.customizations)) for i in items]


_LOAD = f"""
    SELECT {", ".join("o." + c.strip() for c in orders.ORDER_COLUMNS.split(","))},
           p.id AS p_id, p.chain AS p_chain, p.crypto_currency AS p_asset, p.decimals, p.wallet_address,
           p.crypto_amount AS p_amount, p.amount_received, p.token_address, p.chain_id, p.payment_uri,
           p.exchange_rate, p.rate_source, p.fiat_amount, p.fiat_currency, p.status AS p_status,
           p.transaction_hash, p.expires_at AS p_expires_at, p.confirmed_at, p.resolution,
           -- confirmations are read live from the deposits (the stored count moves only with the status)
           coalesce((SELECT min(d.confirmations) FROM deposits d WHERE d.chain = p.chain
                     AND d.address = p.wallet_address AND d.asset = p.crypto_currency
                     AND d.status <> 'orphaned'), 0) AS live_confirmations,
           (SELECT coalesce(json_agg(json_build_object(
                       'product_id', i.product_id, 'product_name', i.product_name, 'base_price', i.base_price::text,
                       'final_price', i.final_price::text, 'quantity', i.quantity, 'customizations', i.customizations)
                       ORDER BY i.id), '[]') FROM order_items i WHERE i.order_id = o.id) AS items
    FROM coffee_orders o JOIN crypto_payments p ON p.order_id = o.id WHERE o.id = $1"""
_items = msgspec.json.Decoder(list[OrderItemOut]).decode


async def load(conn: Connection, order_id: uuid.UUID) -> Order:
    """The order with its items and payment, in one round trip."""
    r = await conn.fetchrow(_LOAD, order_id)
    if r is None:
        raise NotFound("no such order", order_id=str(order_id))
    payment = PaymentRequest(
        id=r["p_id"], chain=r["p_chain"], asset=r["p_asset"], decimals=r["decimals"], address=r["wallet_address"],
        amount=base_units(r["p_amount"]), amount_received=base_units(r["amount_received"]),
        token_address=r["token_address"], chain_id=r["chain_id"], payment_uri=r["payment_uri"],
        rate=r["exchange_rate"].normalize(), rate_source=r["rate_source"], fiat_amount=r["fiat_amount"],
        fiat_currency=r["fiat_currency"], status=r["p_status"], confirmations=r["live_confirmations"],
        transaction_hash=r["transaction_hash"], expires_at=r["p_expires_at"], confirmed_at=r["confirmed_at"],
        resolution=r["resolution"])
    return Order(
        id=r["id"], shop_id=r["shop_id"], user_id=r["user_id"], status=r["order_status"],
        payment_status=r["payment_status"], order_type=r["order_type"], pickup_time=r["pickup_time"],
        delivery_address=r["delivery_address"], special_instructions=r["special_instructions"],
        total_amount=r["total_amount"], currency=r["currency"], items=_items(r["items"]), payment=payment,
        expires_at=r["expires_at"], version=r["version"], created_at=r["created_at"], updated_at=r["updated_at"])


def may_see(c: Claims, order: Any) -> bool:
    return (c.role == "operator" or (c.role == "customer" and c.sub == order["user_id"])
            or (c.role in STAFF and c.can_manage(order["shop_id"])))


async def stock_changed(request: web.Request, shop_id: uuid.UUID) -> None:
    """Reservations moved: the shop's cached supply rows are stale (called after commit)."""
    async with pool(request).acquire() as conn:
        ids = [r["id"] for r in await conn.fetch("SELECT id FROM coffee_supplies WHERE shop_id = $1", shop_id)]
    await cache(request).invalidate(*(keys.supply_key(i) for i in ids), keys.supplies_key(shop_id))


async def _shop_currency(request: web.Request, shop_id: uuid.UUID) -> str:
    async with pool(request).acquire() as conn:
        row = await conn.fetchrow("SELECT currency, status FROM coffee_shops WHERE id = $1", shop_id)
    if row is None or row["status"] == "deleted":
        raise InvalidInput("no such shop", [{"field": "shop_id", "message": "no such shop"}])
    if row["status"] != "active":
        raise InvalidInput("the shop is not taking orders",
                           [{"field": "shop_id", "message": f"shop is {row['status']}"}])
    return str(row["currency"]).strip()


@routes.add("POST", "/v1/orders", summary="Place an order and get its payment request", tag="orders",
            body=OrderCreate, response=Order, status=201, auth="customer (or operator)",
            errors=(400, 401, 403, 409, 422, 503))
async def create_order(request: web.Request) -> web.Response:
    c = require(request, "customer", "operator")
    body = await decode_body(request, OrderCreate)
    asset = _asset(request, body.payment.chain, body.payment.asset)
    currency = await _shop_currency(request, body.shop_id)
    rate = await _rate(request, asset, currency)
    delivery = orders.Delivery(body.order_type, body.pickup_time, body.delivery_address, body.special_instructions)
    async with transaction(pool(request)) as conn:
        order_id, held = await orders.create_order(
            conn, settings(request), user_id=c.sub, shop_id=body.shop_id, currency=currency,
            lines=_lines(body.items), delivery=delivery, asset=asset, rate=rate,
            btc_account=request.app[BTC_ACCOUNT], actor=actor(request))
        order = await load(conn, order_id)
    if held:
        await cache(request).invalidate(*(keys.supply_key(i) for i in held), keys.supplies_key(body.shop_id))
    return json(order, status=201, headers={"Location": f"/v1/orders/{order_id}"})


@routes.add("GET", "/v1/orders/{order_id}", summary="An order with its items and payment", tag="orders",
            response=Order, auth="the customer who placed it, the shop's staff/merchant, operator",
            errors=(401, 403, 404))
async def get_order(request: web.Request) -> web.Response:
    order_id = path_uuid(request, "order_id")
    c = claims(request)
    async with pool(request).acquire() as conn:
        order = await load(conn, order_id)
    if not may_see(c, {"user_id": order.user_id, "shop_id": order.shop_id}):
        raise NotFound("no such order", order_id=str(order_id))  # do not reveal others' orders exist
    return json(order)


@routes.add("GET", "/v1/orders", summary="My orders, or a shop's (staff/merchant: shop_id required)",
            tag="orders", query=OrderQuery, response=Page[OrderSummary], auth="any role",
            errors=(401, 403, 422))
async def list_orders(request: web.Request) -> web.Response:
    c = claims(request)
    q = decode_query(request, OrderQuery)
    page = KeysetPage(q.limit, q.cursor)
    if c.role == "customer":
        page.where("user_id = ?", c.sub)
        if q.shop_id is not None:
            page.where("shop_id = ?", q.shop_id)
    elif c.role in STAFF:
        if q.shop_id is None:
            raise InvalidInput("shop_id is required", [{"field": "query.shop_id", "message": "required for staff"}])
        if not c.can_manage(q.shop_id):
            raise Forbidden("your token is not scoped to this shop")
        page.where("shop_id = ?", q.shop_id)
    elif q.shop_id is not None:
        page.where("shop_id = ?", q.shop_id)
    if q.status is not None:
        page.where("order_status = ?", q.status)
    if q.payment_status is not None:
        page.where("payment_status = ?", q.payment_status)
    columns = """id, shop_id, user_id, order_status AS status, payment_status, total_amount, currency, chain,
                 crypto_currency AS asset, created_at"""
    async with pool(request).acquire() as conn:
        return json(await page.fetch(conn, columns, "coffee_orders", OrderSummary))


async def locked_order(conn: Connection, request: web.Request, order_id: uuid.UUID, *roles: str) -> Any:
    """The order row locked, after checking the caller may act on it in one of `roles`."""
    c = require(request, *roles)
    order = await orders.lock_order(conn, order_id)
    if not may_see(c, order):
        if c.role == "customer":
            raise NotFound("no such order", order_id=str(order_id))
        raise Forbidden("your token is not scoped to this order's shop")
    return order


@routes.add("PATCH", "/v1/orders/{order_id}", summary="Change an unpaid order (items are re-priced and re-quoted)",
            tag="orders", body=OrderPatch, response=Order, auth="the customer who placed it, operator",
            errors=(400, 401, 403, 404, 409, 422, 503))
async def update_order(request: web.Request) -> web.Response:
    order_id = path_uuid(request, "order_id")
    patch = await decode_body(request, OrderPatch)
    async with pool(request).acquire() as conn:
        head = await conn.fetchrow("SELECT chain, crypto_currency, currency FROM coffee_orders WHERE id = $1", order_id)
    if head is None:
        raise NotFound("no such order", order_id=str(order_id))
    asset = _asset(request, head["chain"], head["crypto_currency"])
    rate = None if patch.items is UNSET else await _rate(request, asset, str(head["currency"]).strip())
    async with transaction(pool(request)) as conn:
        order = await locked_order(conn, request, order_id, "customer", "operator")
        check_version(patch, order["version"], "order")

        def pick(name: str) -> Any:
            value = getattr(patch, name)
            return order[name] if value is UNSET else value

        delivery = orders.Delivery(pick("order_type"), pick("pickup_time"), pick("delivery_address"),
                                   pick("special_instructions"))
        if delivery.order_type == "delivery" and not delivery.delivery_address:
            raise InvalidInput("a delivery order needs an address",
                               [{"field": "delivery_address", "message": "required for a delivery order"}])
        await orders.modify(conn, settings(request), order, lines=None if patch.items is UNSET else _lines(patch.items),
                            delivery=delivery, rate=rate, asset=asset, actor=actor(request))
        changed = await load(conn, order_id)
    await stock_changed(request, changed.shop_id)
    return json(changed)


@routes.add("POST", "/v1/orders/{order_id}/cancel", summary="Cancel an unpaid order (its stock is released)",
            tag="orders", response=Order, auth="the customer who placed it, the shop's staff/merchant, operator",
            errors=(401, 403, 404, 409))
async def cancel_order(request: web.Request) -> web.Response:
    order_id = path_uuid(request, "order_id")
    async with transaction(pool(request)) as conn:
        order = await locked_order(conn, request, order_id, "customer", *STAFF, "operator")
        await orders.cancel(conn, order, actor(request))
        changed = await load(conn, order_id)
    await stock_changed(request, changed.shop_id)
    return json(changed)


@routes.add("POST", "/v1/orders/{order_id}/status", summary="Move a paid order along: preparing, ready, completed",
            tag="orders", body=OrderMove, response=Order, auth="the shop's staff/merchant, operator",
            errors=(400, 401, 403, 404, 409, 422))
async def move_order(request: web.Request) -> web.Response:
    order_id = path_uuid(request, "order_id")
    body = await decode_body(request, OrderMove)
    async with transaction(pool(request)) as conn:
        order = await locked_order(conn, request, order_id, *STAFF, "operator")
        await orders.advance(conn, order, body.status, actor(request))
        return json(await load(conn, order_id))


@routes.add("POST", "/v1/orders/{order_id}/payment/resolve",
            summary="Resolve a payment exception: accept (underpaid/late), refund (underpaid/late), settle (overpaid)",
            tag="orders", body=Resolution, response=Order, auth="the shop's merchant, operator",
            errors=(400, 401, 403, 404, 409, 422))
async def resolve_payment(request: web.Request) -> web.Response:
    order_id = path_uuid(request, "order_id")
    body = await decode_body(request, Resolution)
    async with transaction(pool(request)) as conn:
        order = await locked_order(conn, request, order_id, "merchant", "operator")
        await settlement.resolve(conn, order, body.action, actor(request))
        changed = await load(conn, order_id)
    await stock_changed(request, changed.shop_id)
    return json(changed)
