"""Invoices over HTTP: an integration asks for an amount in the assets it offers; the customer picks one
at checkout (holding the invoice's checkout token), which makes the quote and the address."""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid

from aiohttp import web

from beanpay import capability
from beanpay.api.body import decode_body, decode_query
from beanpay.api.guard import allow, needs
from beanpay.api.http import actor, json, path_uuid, who
from beanpay.api.idempotency import mutation
from beanpay.api.invoice_schemas import Invoice, InvoiceCreate, InvoicePage, InvoiceQuery, InvoiceSummary
from beanpay.api.orders import _asset, _rate, load
from beanpay.api.routing import Routes
from beanpay.api.rows import encode_cursor, keyset
from beanpay.api.schemas import PaymentChoice
from beanpay.api.state import BTC_ACCOUNT, pool, settings
from beanpay.db import Connection
from beanpay.engine import invoices
from beanpay.engine.invoices import InvoiceRow
from beanpay.engine.lightning import invoices as lightning_invoices
from beanpay.engine.lightning.invoices import LIGHTNING
from beanpay.errors import Conflict, InvalidInput, NotFound, Unauthorized, Unavailable
from beanpay.money import check_fiat

routes = Routes()
CHECKOUT = "invoice-checkout"
WRITE = needs("invoices:create", "the shop's managers, its integrations, operators")
READ = needs("orders:read", "whoever holds its checkout token, the shop's people, its integrations, operators",
             customers=True, guests=True)


def _token(request: web.Request, invoice_id: uuid.UUID) -> str:
    return capability.token(CHECKOUT, invoice_id, settings(request).jwt_secret or "")


def _opened(request: web.Request, invoice_id: uuid.UUID) -> bool:
    text = request.headers.get("X-Checkout-Token")
    return text is not None and capability.subject(CHECKOUT, text, settings(request).jwt_secret or "") == invoice_id


def _shows_token(request: web.Request, row: InvoiceRow) -> bool:
    """The invoice's link goes to whoever sent it and to those who may make invoices at its shop: an
    integration that made one hands the link to its buyer, and may need it again (a lost answer, a
    reminder); it could make a payable link anyway. Staff and orders:read keys see the invoice only."""
    return _opened(request, row.id) or who(request).may("invoices:create", row.shop_id)


async def _out(request: web.Request, conn: Connection, row: InvoiceRow) -> Invoice:
    payment = (await load(conn, row.order_id)).payment if row.order_id is not None else None
    token = _token(request, row.id) if _shows_token(request, row) else None
    return Invoice(row.id, row.shop_id, row.status, row.exception, row.amount, row.currency.strip(), row.assets,
                   row.order_ref, row.buyer_email, row.redirect_url, row.tolerance_bps, row.speed, row.expires_at,
                   row.created_at, row.order_id, payment, token)


async def _allow_shop_of(request: web.Request, invoice_id: uuid.UUID) -> None:
    """The caller holds the route's permission on the invoice's shop."""
    async with pool(request).acquire() as conn:
        shop = await invoices.shop_of(conn, invoice_id)
    if shop is None:
        raise NotFound("no such invoice", invoice_id=str(invoice_id))
    allow(request, shop)


def _summary(row: InvoiceRow) -> InvoiceSummary:
    """A listed invoice: its state, without the payment (GET /v1/invoices/{id} shows that)."""
    return InvoiceSummary(row.id, row.shop_id, row.status, row.exception, row.amount, row.currency.strip(),
                          row.assets, row.order_ref, row.expires_at, row.created_at, row.order_id)


async def _visible(request: web.Request, invoice_id: uuid.UUID) -> None:
    """The caller holds the invoice's checkout token, or the route's permission on its shop."""
    if _opened(request, invoice_id):
        return
    if who(request).kind == "anonymous":
        raise Unauthorized("sign in, or send the invoice's X-Checkout-Token")
    await _allow_shop_of(request, invoice_id)


@routes.add("POST", "/v1/invoices", summary="Ask to be paid an amount in the assets offered", tag="invoices",
            body=InvoiceCreate, response=Invoice, status=201, policy=WRITE, errors=(400, 401, 403, 404, 422))
async def create_invoice(request: web.Request) -> web.Response:
    body = await decode_body(request, InvoiceCreate)
    allow(request, body.shop_id)
    s = settings(request)
    if (why := check_fiat(body.amount, body.currency)) is not None or body.amount <= 0:
        raise InvalidInput("bad amount", [{"field": "amount", "message": why or "must be above zero"}])
    offered = []
    for i, choice in enumerate(body.assets):
        try:
            asset = _asset(request, choice.chain, choice.asset)
        except InvalidInput:
            raise InvalidInput("unsupported asset", [{"field": f"assets[{i}]",
                                                     "message": f"{choice.chain}/{choice.asset} is not accepted"}]) \
                from None
        label = LIGHTNING + "/BTC" if choice.chain == LIGHTNING else f"{asset.chain}/{asset.symbol}"
        if label not in offered:
            offered.append(label)
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=body.expires_in_seconds or s.payment_window_seconds)
    tolerance = s.underpay_tolerance_bps if body.underpay_tolerance_bps is None else body.underpay_tolerance_bps
    async with mutation(request) as m:
        if not await invoices.shop_exists(m.conn, body.shop_id):
            raise NotFound("no such shop", shop_id=str(body.shop_id))
        row = await invoices.create(m.conn, shop_id=body.shop_id, amount=body.amount, currency=body.currency,
                                    assets=offered, order_ref=body.order_ref, buyer_email=body.buyer_email,
                                    redirect_url=body.redirect_url, tolerance_bps=tolerance, speed=body.speed,
                                    expires_at=expires, actor=actor(request))
        return await m.respond(json(await _out(request, m.conn, row), status=201))


@routes.add("GET", "/v1/invoices/{invoice_id}", summary="An invoice, with its payment once an asset is picked",
            tag="invoices", response=Invoice, policy=READ, errors=(401, 403, 404), headers=("X-Checkout-Token",))
async def get_invoice(request: web.Request) -> web.Response:
    invoice_id = path_uuid(request, "invoice_id")
    await _visible(request, invoice_id)
    async with pool(request).acquire() as conn:
        return json(await _out(request, conn, await invoices.get(conn, invoice_id)))


@routes.add("GET", "/v1/invoices", summary="A shop's invoices, newest first, by status, exception and date",
            tag="invoices", query=InvoiceQuery, response=InvoicePage,
            policy=needs("orders:read", "the shop's people, its integrations, operators"), errors=(401, 403, 422))
async def list_invoices(request: web.Request) -> web.Response:
    q = decode_query(request, InvoiceQuery)
    allow(request, q.shop_id)
    after, after_id = keyset(q.cursor)
    async with pool(request).acquire() as conn:
        rows = await invoices.page(conn, q.shop_id, q.limit + 1, (after, after_id), status=q.status,
                                   exception=q.exception, created_from=q.created_from, created_to=q.created_to)
    items = [_summary(r) for r in rows[: q.limit]]
    more = len(rows) > q.limit
    return json(InvoicePage(items, encode_cursor(items[-1].created_at, str(items[-1].id)) if more else None))


@routes.add("POST", "/v1/invoices/{invoice_id}/cancel", summary="Cancel an unpaid invoice", tag="invoices",
            response=Invoice, policy=WRITE, errors=(401, 403, 404, 409))
async def cancel_invoice(request: web.Request) -> web.Response:
    invoice_id = path_uuid(request, "invoice_id")
    await _allow_shop_of(request, invoice_id)
    async with mutation(request) as m:
        row = await invoices.cancel(m.conn, invoice_id, actor(request))
        return await m.respond(json(await _out(request, m.conn, row)))


@routes.add("POST", "/v1/invoices/{invoice_id}/payment",
            summary="Pick the asset to pay the invoice in: the quote is locked and the address made now",
            tag="invoices", body=PaymentChoice, response=Invoice,
            policy=needs("orders:create", "whoever holds its checkout token (the customer at checkout), the shop's "
                         "managers and integrations, operators", customers=True, guests=True),
            errors=(400, 401, 403, 404, 409, 410, 422, 503), headers=("X-Checkout-Token",))
async def pick_asset(request: web.Request) -> web.Response:
    invoice_id = path_uuid(request, "invoice_id")
    if not _opened(request, invoice_id):
        if who(request).kind in ("anonymous", "customer"):
            raise Unauthorized("send the invoice's X-Checkout-Token")
        await _allow_shop_of(request, invoice_id)
    body = await decode_body(request, PaymentChoice)
    asset = _asset(request, body.chain, body.asset)
    c = who(request)
    payer = c.id if c.kind == "customer" and c.id else uuid.uuid4()  # a guest is known by the token only
    async with mutation(request) as m:
        order_id = await invoices.pick(
            m.conn, settings(request), invoice_id, asset, rate_for=lambda fiat: _rate(request, asset, fiat),
            btc_account=request.app[BTC_ACCOUNT], user_id=payer, actor=actor(request),
            offered_as=f"{body.chain}/{body.asset}")
        row = await invoices.get(m.conn, invoice_id)
        response = await m.respond(json(await _out(request, m.conn, row)))
    if body.chain == LIGHTNING:  # after the commit; the order (GET) shows the invoice, or on chain only
        with contextlib.suppress(Unavailable, Conflict):
            await lightning_invoices.issue(pool(request), settings(request), order_id, actor(request))
        async with pool(request).acquire() as conn:
            response = json(await _out(request, conn, await invoices.get(conn, invoice_id)))
    return response
