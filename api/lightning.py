"""Lightning over HTTP: a shop connects its own lnd node, and an order's Bitcoin payment gets a BOLT11
invoice (when the customer picks Lightning; orders placed with `lightning/BTC` get one at once)."""

from __future__ import annotations

import secrets
import ssl
import uuid
from urllib.parse import urlsplit

import msgspec
from aiohttp import web

from beanpay import audit
from beanpay.api.body import decode_body
from beanpay.api.guard import allow, needs
from beanpay.api.http import actor, json, path_uuid
from beanpay.api.idempotency import mark_recorded
from beanpay.api.lightning_schemas import LightningNodeOut, LightningNodeSet
from beanpay.api.orders import may_see, opened_by_token
from beanpay.api.routing import Routes
from beanpay.api.schemas import LightningInvoiceOut, Order
from beanpay.api.shops import fetch_shop
from beanpay.api.state import pool, settings
from beanpay.chains.lightning.lnd import LndClient, LndError, LndUnavailable, ssl_context
from beanpay.engine.lightning import invoices, nodes
from beanpay.engine.lightning import refunds as lightning_refunds
from beanpay.engine.lightning.invoices import InvoiceRow, unified_uri
from beanpay.engine.lightning.nodes import NodeRow
from beanpay.engine.webhooks.egress import connector_options, host_problem
from beanpay.errors import Conflict, InvalidInput, NotFound, Unavailable

routes = Routes()
READ = needs("ledger:read", "the shop's owners and managers, its integrations, operators")
MANAGE = needs("wallets:manage", "the shop's owners, operators")


def invoice_out(row: InvoiceRow, payment_uri: str) -> LightningInvoiceOut:
    return LightningInvoiceOut(row.bolt11, row.payment_hash, str(row.amount_msat), row.expires_at, row.state,
                               unified_uri(payment_uri, row.bolt11), row.description)


async def with_invoice(request: web.Request, order: Order) -> Order:
    """The order with a Lightning invoice for its payment, or the reason there is none (on chain only)."""
    try:
        row = await invoices.issue(pool(request), settings(request), order.id, actor(request))
    except (Unavailable, Conflict) as e:
        payment = msgspec.structs.replace(order.payment, lightning_unavailable=str(e))
    else:
        payment = msgspec.structs.replace(order.payment, lightning=invoice_out(row, order.payment.payment_uri))
    return msgspec.structs.replace(order, payment=payment)


@routes.add("POST", "/v1/orders/{order_id}/lightning-invoice",
            summary="A Lightning invoice for the order's Bitcoin payment (the open one, or a new one)",
            tag="lightning", response=LightningInvoiceOut,
            policy=needs("orders:read", "the customer who placed it (or whoever holds its checkout token), the "
                         "shop's people, operators", customers=True, guests=True),
            errors=(401, 403, 404, 409, 503), headers=("X-Checkout-Token",))
async def issue_invoice(request: web.Request) -> web.Response:
    """Idempotent by nature: while the payment waits, asking again answers with the same open invoice."""
    order_id = path_uuid(request, "order_id")
    opened = opened_by_token(request, order_id)
    async with pool(request).acquire() as conn:
        head = await invoices.payment_of(conn, order_id)
    if head is None or (not opened and not may_see(request, head.user_id, head.shop_id)):
        raise NotFound("no such order", order_id=str(order_id))
    row = await invoices.issue(pool(request), settings(request), order_id, actor(request))
    mark_recorded(request)  # nothing to replay: the same request answers with the same open invoice
    return json(invoice_out(row, head.payment_uri))


def _node_out(shop_id: uuid.UUID, node: NodeRow | None, *, custodial: bool, pays: bool) -> LightningNodeOut:
    if node is None:
        return LightningNodeOut(shop_id, custodial, configured=False)
    return LightningNodeOut(shop_id, custodial, True, node.pubkey, node.alias, None if custodial else node.rest_url,
                            node.health, node.health_reason,
                            None if node.inbound_msat is None else str(node.inbound_msat), node.checked_at, pays)


@routes.add("GET", "/v1/shops/{shop_id}/lightning-node", summary="The Lightning node issuing the shop's invoices",
            tag="lightning", response=LightningNodeOut, policy=READ, errors=(401, 403, 404))
async def get_node(request: web.Request) -> web.Response:
    shop_id = path_uuid(request, "shop_id")
    allow(request, shop_id)
    async with pool(request).acquire() as conn:
        await fetch_shop(conn, shop_id)
        node = await nodes.serving(conn, settings(request), shop_id)
        pays = await lightning_refunds.may_pay(conn, settings(request), shop_id)
    return json(_node_out(shop_id, node, custodial=node is None or node.custodial, pays=pays))


def _bad(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field}: {message}", [{"field": field, "message": message}])


async def _probe(client: LndClient) -> tuple[str, str]:
    """The node's pubkey and alias, after checking the macaroon may issue invoices and may not pay."""
    try:
        info = await client.info()
    except LndUnavailable:
        raise _bad("rest_url", "the node cannot be reached at this URL with this certificate") from None
    except LndError as e:
        raise _bad("macaroon", "the node refused it for reading its identity (bake it with info:read)"
                   if e.permission_denied else e.message) from None
    try:
        await client.lookup_invoice(secrets.token_hex(32))  # unknown: "unable to locate", unless not allowed
    except LndError as e:
        if e.permission_denied:
            raise _bad("macaroon", "it may not read invoices (bake it with invoices:read invoices:write)") from None
    try:  # a payment request that cannot be paid: only the permission check matters
        await client.pay("lnbcrt1beanpayprobe")
    except LndError as e:
        if e.permission_denied:
            return info.identity_pubkey, info.alias
    raise _bad("macaroon", "this macaroon may spend from the node; bake one that may not: "
                           "lncli bakemacaroon invoices:read invoices:write info:read offchain:read")


async def _probe_payer(client: LndClient) -> None:
    """The paying macaroon may decode and pay invoices (a request that cannot be paid passes the checks)."""
    try:
        await client.pay("lnbcrt1beanpayprobe")
    except LndUnavailable:
        raise _bad("rest_url", "the node cannot be reached at this URL with this certificate") from None
    except LndError as e:
        if e.permission_denied:
            raise _bad("pay_macaroon", "it may not pay (bake it with offchain:read offchain:write info:read)") \
                from None


@routes.add("PUT", "/v1/shops/{shop_id}/lightning-node",
            summary="Connect the shop's own lnd node (invoice-only macaroon; beanpay can never spend)",
            tag="lightning", body=LightningNodeSet, response=LightningNodeOut, policy=MANAGE,
            errors=(400, 401, 403, 404, 409, 422, 503))
async def put_node(request: web.Request) -> web.Response:
    shop_id = path_uuid(request, "shop_id")
    allow(request, shop_id)
    body = await decode_body(request, LightningNodeSet)
    s = settings(request)
    host = urlsplit(body.rest_url).hostname or ""
    if not s.webhook_allow_private and (problem := host_problem(host)) is not None:
        raise _bad("rest_url", problem)
    try:
        ssl_context(body.tls_cert)
    except (ssl.SSLError, ValueError, TypeError):  # TypeError: not ASCII
        raise _bad("tls_cert", "not a PEM certificate") from None
    try:
        sealed = nodes.seal(s, shop_id, body.macaroon)
    except nodes.CredentialsUnavailable as e:
        raise Unavailable(f"node credentials cannot be stored here: {e}") from None
    client = LndClient(body.rest_url, tls_cert_pem=body.tls_cert, macaroon_hex=body.macaroon,
                       connector=connector_options(s.webhook_allow_private))
    try:
        pubkey, alias = await _probe(client)
    finally:
        await client.close()
    pay_sealed = None
    if body.pay_macaroon is not None:
        payer = LndClient(body.rest_url, tls_cert_pem=body.tls_cert, macaroon_hex=body.pay_macaroon,
                          connector=connector_options(s.webhook_allow_private))
        try:
            await _probe_payer(payer)
        finally:
            await payer.close()
        pay_sealed = nodes.seal(s, shop_id, body.pay_macaroon)
    async with pool(request).transaction() as conn:
        await fetch_shop(conn, shop_id, lock=True)
        try:
            node = await nodes.connect_shop_node(
                conn, shop_id, rest_url=body.rest_url, tls_cert=body.tls_cert, macaroon_sealed=sealed, pubkey=pubkey,
                alias=alias, pay_macaroon_sealed=pay_sealed,
                pay_daily_limit_msat=None if body.pay_daily_limit_sat is None else body.pay_daily_limit_sat * 1000)
        except nodes.NodeStillBusy:
            raise Conflict("invoices are still open on the shop's current node; connect another once they "
                           "are paid or expired") from None
        await audit.record(conn, actor(request), "lightning.node_connected", "shop", shop_id,
                           after={"pubkey": pubkey, "alias": alias, "rest_url": body.rest_url})
    if node is None:
        raise NotFound("no such shop")
    return json(_node_out(shop_id, node, custodial=False, pays=pay_sealed is not None))
