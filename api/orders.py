"""Orders over HTTP: place (with its payment request), read, list, change while unpaid, cancel, the
shop's progress moves, and the merchant's resolution of a payment exception."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import msgspec
from aiohttp import web
from msgspec import UNSET

from beanpay import cachekeys as keys
from beanpay import faults, queries
from beanpay.api.accounts import credentials
from beanpay.api.body import check_version, decode_body, decode_query
from beanpay.api.guard import may, needs
from beanpay.api.http import actor, json, path_uuid, who
from beanpay.api.idempotency import key_of, mark_recorded, mutation, replay
from beanpay.api.routing import Routes
from beanpay.api.rows import keyset, page_of
from beanpay.api.schemas import (
    LightningInvoiceOut,
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
    encoder,
)
from beanpay.api.state import BTC_ACCOUNT, cache, pool, rates, settings
from beanpay.api.supplies import SQL as SUPPLIES
from beanpay.db import Connection
from beanpay.engine import orders, settlement
from beanpay.engine.addresses import BITCOIN
from beanpay.engine.assets import Asset, payable_assets
from beanpay.engine.lightning.invoices import LIGHTNING, unified_uri
from beanpay.engine.prices.providers import Rate, RateUnavailable
from beanpay.engine.rows import OrderRow
from beanpay.engine.transfers import cancellation, refunds
from beanpay.errors import Forbidden, InvalidInput, NotFound, Unauthorized, Unavailable
from beanpay.idempotency import Answer

routes = Routes()
SQL = queries.load("beanpay.api", "orders.sql")
READ = needs("orders:read", "the customer who placed it, the shop's people, operators", customers=True)


def plain(value: Decimal) -> Decimal:
    """A rate without trailing zeros, in positional notation (65000, not 6.5E+4)."""
    return Decimal(format(value.normalize(), "f"))


async def _rate(request: web.Request, asset: Asset, fiat: str) -> Rate:
    try:
        return await rates(request).get(asset.symbol, fiat)
    except RateUnavailable as exc:
        raise Unavailable(f"no fresh {asset.symbol}/{fiat} rate; try again shortly", reason=str(exc)) from None


def _asset(request: web.Request, chain: str, symbol: str) -> Asset:
    """The asset a payment choice names; `lightning/BTC` is Bitcoin (with a Lightning invoice issued too)."""
    asset = payable_assets(settings(request)).get((BITCOIN if chain == LIGHTNING else chain, symbol))
    if chain == LIGHTNING and symbol != "BTC":
        asset = None
    if asset is None:
        choices = ", ".join([f"{c}/{a}" for c, a in payable_assets(settings(request))] + ["lightning/BTC"])
        raise InvalidInput("unsupported payment asset",
                           [{"field": "payment.asset", "message": f"{chain}/{symbol} is not accepted; use {choices}"}])
    return asset


def _lines(items: list[Any]) -> list[orders.Line]:
    return [orders.Line(i.product_id, i.quantity, dict(i.customizations)) for i in items]


_items = msgspec.json.Decoder(list[OrderItemOut]).decode


async def load(conn: Connection, order_id: uuid.UUID) -> Order:
    """The order with its items and payment, in one round trip."""
    r = await conn.fetchrow(SQL.load, order_id)
    if r is None:
        raise NotFound("no such order", order_id=str(order_id))
    payment = PaymentRequest(
        id=r["p_id"], chain=r["p_chain"], asset=r["p_asset"], decimals=r["decimals"], address=r["wallet_address"],
        amount=str(r["p_amount"]), amount_received=str(r["amount_received"]), token_address=r["token_address"],
        chain_id=r["chain_id"], payment_uri=r["payment_uri"], rate=plain(r["exchange_rate"]),
        rate_source=r["rate_source"], fiat_amount=r["fiat_amount"], fiat_currency=r["fiat_currency"],
        status=r["p_status"], confirmations=r["live_confirmations"], transaction_hash=r["transaction_hash"],
        expires_at=r["p_expires_at"], confirmed_at=r["confirmed_at"], resolution=r["resolution"],
        lightning=None if r["ln_hash"] is None else LightningInvoiceOut(
            r["ln_bolt11"], r["ln_hash"], str(r["ln_amount_msat"]), r["ln_expires_at"], r["ln_state"],
            unified_uri(r["payment_uri"], r["ln_bolt11"]), r["ln_description"]))
    return Order(
        id=r["id"], shop_id=r["shop_id"], user_id=r["user_id"], status=r["order_status"],
        payment_status=r["payment_status"], order_type=r["order_type"], pickup_time=r["pickup_time"],
        delivery_address=r["delivery_address"], special_instructions=r["special_instructions"],
        total_amount=r["total_amount"], currency=r["currency"], items=_items(r["items"]), payment=payment,
        expires_at=r["expires_at"], version=r["version"], created_at=r["created_at"], updated_at=r["updated_at"])


def placed(new: orders.NewOrder, secret: str) -> Order:
    """A just-placed order as GET /v1/orders/{id} would show it (without reading it back)."""
    o, p = new.order, new.payment
    payment = PaymentRequest(
        id=p.id, chain=p.chain, asset=p.crypto_currency, decimals=p.decimals, address=p.wallet_address,
        amount=str(p.crypto_amount), amount_received="0", token_address=p.token_address, chain_id=p.chain_id,
        payment_uri=p.payment_uri, rate=plain(p.exchange_rate), rate_source=p.rate_source, fiat_amount=p.fiat_amount,
        fiat_currency=p.fiat_currency, status=p.status, confirmations=0, transaction_hash=None,
        expires_at=p.expires_at, confirmed_at=None, resolution=None)
    items = [OrderItemOut(it.line.product_id, it.name, it.menu_price, it.priced.unit_price, it.line.quantity,
                          dict(it.line.customizations)) for it in new.items]
    return Order(
        id=o.id, shop_id=o.shop_id, user_id=o.user_id, status=o.order_status, payment_status=o.payment_status,
        order_type=o.order_type, pickup_time=o.pickup_time, delivery_address=o.delivery_address,
        special_instructions=o.special_instructions, total_amount=o.total_amount, currency=o.currency, items=items,
        payment=payment, expires_at=o.expires_at, version=o.version, created_at=o.created_at, updated_at=o.updated_at,
        checkout_token=credentials.checkout_token(o.id, secret))


def opened_by_token(request: web.Request, order_id: uuid.UUID) -> bool:
    """Whether the request holds the order's X-Checkout-Token; an anonymous caller without it is refused."""
    capability = request.headers.get("X-Checkout-Token")
    secret = settings(request).jwt_secret or ""
    opened = capability is not None and credentials.checkout_order(capability, secret) == order_id
    if not opened and who(request).kind == "anonymous":
        raise Unauthorized("sign in, or send the order's X-Checkout-Token")
    return opened


def may_see(request: web.Request, user_id: uuid.UUID, shop_id: uuid.UUID, *, shop: bool = True) -> bool:
    """The order's own customer, operators, and (`shop`) whoever holds the route's permission on its shop."""
    p = who(request)
    return p.operator or (p.kind == "customer" and p.id == user_id) or (shop and may(request, shop_id))


async def stock_changed(request: web.Request, shop_id: uuid.UUID) -> None:
    """Reservations moved: the shop's cached supply rows are stale (called after commit)."""
    async with pool(request).acquire() as conn:
        ids = [r["id"] for r in await conn.fetch(SUPPLIES.ids_of_shop, shop_id)]
    await cache(request).invalidate(*(keys.supply_key(i) for i in ids), keys.supplies_key(shop_id))


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    """In UTC (a time without a zone is taken as UTC); the body's rules checked it fits."""
    return None if value is None else (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)


@routes.add("POST", "/v1/orders", summary="Place an order and get its payment request", tag="orders",
            body=OrderCreate, response=Order, status=201,
            policy=needs("orders:create", "guests, customers, integrations and managers of the shop, operators",
                         customers=True, guests=True),
            errors=(400, 401, 403, 409, 422, 429, 503), inline_idempotency=True)
async def create_order(request: web.Request) -> web.Response:
    c = who(request)
    body = await decode_body(request, OrderCreate)
    if c.kind not in ("customer", "anonymous") and not may(request, body.shop_id):
        raise Forbidden("you may not place orders for this shop")
    user_id = c.id or uuid.uuid4()  # a guest is known by the order's checkout token only
    secret = settings(request).jwt_secret or ""
    asset = _asset(request, body.payment.chain, body.payment.asset)
    delivery = orders.Delivery(body.order_type, _utc(body.pickup_time), body.delivery_address,
                               body.special_instructions)
    result = await orders.create_order(
        pool(request), settings(request), user_id=user_id, shop_id=body.shop_id, lines=_lines(body.items),
        delivery=delivery, asset=asset, rate_for=lambda fiat: _rate(request, asset, fiat),
        btc_account=request.app[BTC_ACCOUNT], actor=actor(request), key=key_of(request),
        respond=lambda new: encoder.encode(placed(new, secret)))
    if isinstance(result, Answer):
        return replay(result, request)
    faults.point(settings(request), faults.ORDER_COMMITTED)
    mark_recorded(request)
    if result.held:
        await cache(request).invalidate(*(keys.supply_key(i) for i in result.held), keys.supplies_key(body.shop_id))
    order = placed(result, secret)
    if body.payment.chain == LIGHTNING:  # after the commit: the node is never asked inside a transaction
        from beanpay.api.lightning import with_invoice

        order = await with_invoice(request, order)
    return json(order, status=201, headers={"Location": f"/v1/orders/{result.order.id}"})


@routes.add("GET", "/v1/orders/{order_id}", summary="An order with its items and payment; its checkout token "
            "only to whoever placed it or holds it", tag="orders",
            response=Order, policy=needs("orders:read", "the customer who placed it (or whoever holds its checkout "
                                         "token), the shop's people, operators", customers=True, guests=True),
            errors=(401, 403, 404), headers=("X-Checkout-Token",))
async def get_order(request: web.Request) -> web.Response:
    """The checkout token (the order's page: its claim code at the counter, push about it) goes to whoever
    placed the order, the order's `user_id` (its customer, or the integration or manager that placed it
    for a buyer and hands the link on), and back to whoever sent it; not to staff or read-only keys."""
    order_id = path_uuid(request, "order_id")
    secret = settings(request).jwt_secret or ""
    opened = opened_by_token(request, order_id)
    async with pool(request).acquire() as conn:
        order = await load(conn, order_id)
    if not opened and not may_see(request, order.user_id, order.shop_id):
        raise NotFound("no such order", order_id=str(order_id))  # do not reveal others' orders exist
    if not opened and who(request).id != order.user_id:
        return json(order)  # the shop's people see the order, not its capability
    return json(msgspec.structs.replace(order, checkout_token=credentials.checkout_token(order_id, secret)))


@routes.add("GET", "/v1/orders", summary="My orders, or a shop's (staff/merchant: shop_id required)",
            tag="orders", query=OrderQuery, response=Page[OrderSummary], policy=READ, errors=(401, 403, 422))
async def list_orders(request: web.Request) -> web.Response:
    c = who(request)
    q = decode_query(request, OrderQuery)
    after, after_id = keyset(q.cursor)
    customer = c.id if c.kind == "customer" else None
    if c.kind != "customer" and not c.operator:
        if q.shop_id is None:
            raise InvalidInput("shop_id is required",
                               [{"field": "query.shop_id", "message": "required unless you list your own orders"}])
        if not may(request, q.shop_id):
            raise Forbidden("you do not hold orders:read on this shop")
    async with pool(request).acquire() as conn:
        rows = await conn.fetch(SQL.page, q.limit + 1, after, after_id, customer, q.shop_id, q.status,
                                q.payment_status)
    return json(page_of(rows, q.limit, OrderSummary))


async def locked_order(conn: Connection, request: web.Request, order_id: uuid.UUID, *, customer: bool = True,
                       shop: bool = True) -> OrderRow:
    """The order row locked, after checking the caller may act on it: as its own customer (`customer`),
    holding the route's permission on its shop (`shop`), or as an operator."""
    c = who(request)
    order = await orders.lock_order(conn, order_id)
    if c.kind == "customer" and not customer:
        raise Forbidden("customers may not do this")
    if not may_see(request, order.user_id, order.shop_id, shop=shop):
        if c.kind == "customer" or not c.may_somewhere("orders:read"):
            raise NotFound("no such order", order_id=str(order_id))  # do not reveal others' orders exist
        raise Forbidden("you may not do this to this shop's orders")
    return order


@routes.add("PATCH", "/v1/orders/{order_id}", summary="Change an unpaid order (items are re-priced and re-quoted)",
            tag="orders", body=OrderPatch, response=Order,
            policy=needs("orders:write", "the customer who placed it, operators", customers=True),
            errors=(400, 401, 403, 404, 409, 422, 503))
async def update_order(request: web.Request) -> web.Response:
    order_id = path_uuid(request, "order_id")
    patch = await decode_body(request, OrderPatch)
    async with pool(request).acquire() as conn:
        head = await conn.fetchrow(SQL.head, order_id)
    if head is None:
        raise NotFound("no such order", order_id=str(order_id))
    asset = _asset(request, head["chain"], head["crypto_currency"])
    rate = None if patch.items is UNSET else await _rate(request, asset, str(head["currency"]).strip())
    async with pool(request).transaction() as conn:
        order = await locked_order(conn, request, order_id, shop=False)
        check_version(patch, order.version, "order")

        def pick(name: str) -> Any:
            value = getattr(patch, name)
            return getattr(order, name) if value is UNSET else value

        delivery = orders.Delivery(pick("order_type"), _utc(pick("pickup_time")), pick("delivery_address"),
                                   pick("special_instructions"))
        if delivery.order_type == "delivery" and not delivery.delivery_address:
            raise InvalidInput("a delivery order needs an address",
                               [{"field": "delivery_address", "message": "required for a delivery order"}])
        await orders.modify(conn, settings(request), order, lines=None if patch.items is UNSET else _lines(patch.items),
                            delivery=delivery, rate=rate, asset=asset, actor=actor(request))
        changed = await load(conn, order_id)
    await stock_changed(request, changed.shop_id)
    return json(changed)


@routes.add("POST", "/v1/orders/{order_id}/cancel",
            summary="Cancel an order: unpaid, its stock is released; paid and not yet in preparation, the shop's "
                    "managers cancel it and a refund of its payment is issued",
            tag="orders", response=Order,
            policy=needs("orders:write", "the customer who placed it, the shop's people, operators", customers=True),
            errors=(401, 403, 404, 409))
async def cancel_order(request: web.Request) -> web.Response:
    order_id = path_uuid(request, "order_id")
    async with mutation(request) as m:
        order = await locked_order(m.conn, request, order_id)
        if order.order_status == "confirmed":
            if not who(request).may("refunds:create", order.shop_id):
                raise Forbidden("a paid order is cancelled with its refund, by the shop's managers")
            await cancellation.cancel_paid(m.conn, order, claim_ttl=dt.timedelta(seconds=settings(request)
                                           .refund_claim_seconds), secret=settings(request).jwt_secret or "",
                                           actor=actor(request), minimums=settings(request).transfer_minimums)
        else:
            await orders.cancel(m.conn, order, actor(request))
        changed = await load(m.conn, order_id)
        response = await m.respond(json(changed))
    await stock_changed(request, changed.shop_id)
    return response


@routes.add("POST", "/v1/orders/{order_id}/status", summary="Move a paid order along: preparing, ready, completed",
            tag="orders", body=OrderMove, response=Order,
            policy=needs("orders:write", "the shop's staff, managers and owners, operators"),
            errors=(400, 401, 403, 404, 409, 422))
async def move_order(request: web.Request) -> web.Response:
    order_id = path_uuid(request, "order_id")
    body = await decode_body(request, OrderMove)
    async with mutation(request) as m:
        order = await locked_order(m.conn, request, order_id, customer=False)
        await orders.advance(m.conn, order, body.status, actor(request))
        return await m.respond(json(await load(m.conn, order_id)))


@routes.add("POST", "/v1/orders/{order_id}/payment/resolve",
            summary="Resolve a payment exception: accept (underpaid/late), refund (underpaid/late), settle (overpaid)",
            tag="orders", body=Resolution, response=Order,
            policy=needs("payments:resolve", "the shop's owners and managers, operators"),
            errors=(400, 401, 403, 404, 409, 422))
async def resolve_payment(request: web.Request) -> web.Response:
    order_id = path_uuid(request, "order_id")
    body = await decode_body(request, Resolution)
    async with mutation(request) as m:
        order = await locked_order(m.conn, request, order_id, customer=False)
        if body.action == "refund":  # the money goes back through a refund the customer claims
            await refunds.issue(m.conn, order_id=order.id, variant="crypto_paid", amount=None, fiat_amount=None,
                                fee_bps=0, reason="payment exception refunded", rate=None,
                                claim_ttl=dt.timedelta(seconds=settings(request).refund_claim_seconds),
                                secret=settings(request).jwt_secret or "", actor=actor(request),
                                minimums=settings(request).transfer_minimums)
        else:
            await settlement.resolve(m.conn, order, body.action, actor(request))
        changed = await load(m.conn, order_id)
        response = await m.respond(json(changed))
    await stock_changed(request, changed.shop_id)
    return response
