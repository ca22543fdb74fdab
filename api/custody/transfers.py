"""What refunds and payouts share over HTTP: how a transfer is shown, who may act on one, the rate now, and
the actions both take the same way (list, get, retry, cancel, record a transaction sent by a wallet of one's own)."""

from __future__ import annotations

import uuid
from decimal import Decimal

from aiohttp import web

from beanpay.api.body import decode_body, decode_query
from beanpay.api.custody.schemas import (
    SentTransaction,
    Transfer,
    TransferCancel,
    TransferPage,
    TransferQuery,
    UnsignedTransaction,
)
from beanpay.api.guard import allow
from beanpay.api.http import actor, json, path_uuid, who
from beanpay.api.idempotency import mutation
from beanpay.api.orders import plain
from beanpay.api.rows import encode_cursor, keyset
from beanpay.api.state import BTC_RPC, pool, rates, settings
from beanpay.engine.assets import Asset, payable_assets
from beanpay.engine.payment_uri import payment_uri
from beanpay.engine.prices.providers import RateUnavailable
from beanpay.engine.transfers import approval, cancellation, evm, service
from beanpay.engine.transfers.service import TransferRow
from beanpay.errors import InvalidInput, NotFound, Unavailable


def secret(request: web.Request) -> str:
    return settings(request).jwt_secret or ""


def _unsigned(request: web.Request, r: TransferRow) -> tuple[UnsignedTransaction | None, str | None]:
    if r.method != "external" or r.amount is None or r.destination is None:
        return None, None
    to, value, data = evm.expected_call(r)
    chain = settings(request).evm_chain(r.chain)
    asset = Asset(r.chain, r.asset, r.decimals, r.token_address, chain.chain_id)
    return UnsignedTransaction(chain.chain_id, to, str(value), data), payment_uri(asset, r.destination, r.amount)


def out(request: web.Request, r: TransferRow) -> Transfer:
    """A transfer as the API shows it. A refund's claim link (whoever holds it chooses where the money
    goes) is shown only to those who may issue refunds at the shop, not to its staff."""
    unsigned, uri = _unsigned(request, r)
    refund: dict[str, object] = {}
    if r.kind == "refund":
        refund = {"order_id": r.order_id, "payment_id": r.payment_id, "variant": r.variant, "fee_bps": r.fee_bps,
                  "fiat_amount": r.fiat_amount, "fiat_currency": r.fiat_currency.strip() if r.fiat_currency else None,
                  "rate": None if r.rate is None else plain(r.rate), "claim_expires_at": r.claim_expires_at,
                  "claimed_at": r.claimed_at}
        if who(request).may("refunds:create", r.shop_id):
            token = service.claim_token(r.id, secret(request))
            refund |= {"claim_token": token, "claim_url": f"/refunds/claim/{token}"}
    return Transfer(
        id=r.id, kind=r.kind, shop_id=r.shop_id, chain=r.chain, asset=r.asset, decimals=r.decimals,
        amount=None if r.amount is None else str(r.amount), status=r.status, method=r.method,
        custodial=r.platform_money, destination=r.destination, psbt=r.psbt, batch_id=r.batch_id,
        unsigned_transaction=unsigned, payment_uri=uri, txid=r.txid,
        network_fee=None if r.network_fee is None else str(r.network_fee), failure=r.failure, reason=r.reason,
        created_at=r.created_at, approved_at=r.approved_at, sent_at=r.sent_at, completed_at=r.completed_at,
        **refund)  # type: ignore[arg-type]


async def rate_now(request: web.Request, chain: str, asset: str, fiat: str) -> Decimal:
    found = payable_assets(settings(request)).get((chain, asset))
    try:
        return (await rates(request).get(found.symbol if found else asset, fiat.strip())).rate
    except RateUnavailable as exc:
        raise Unavailable(f"no fresh {asset}/{fiat} rate; try again shortly", reason=str(exc)) from None


async def own(request: web.Request, name: str, kind: str) -> uuid.UUID:
    """The transfer in the path, of `kind`, after checking the caller holds the route's permission on its shop."""
    transfer_id = path_uuid(request, name)
    async with pool(request).acquire() as conn:
        found = await service.owner(conn, transfer_id)
    if found is None or found.kind != kind:
        raise NotFound(f"no such {kind}", **{name: str(transfer_id)})
    allow(request, found.shop_id)
    return transfer_id


async def page_of_shop(request: web.Request, kind: str) -> web.Response:
    """A shop's transfers of `kind`, newest first, a page at a time."""
    shop_id = path_uuid(request, "shop_id")
    allow(request, shop_id)
    q = decode_query(request, TransferQuery)
    after, after_id = keyset(q.cursor)
    async with pool(request).acquire() as conn:
        rows = await service.of_shop(conn, shop_id, kind, q.limit + 1, (after, after_id))
    items = [out(request, r) for r in rows[: q.limit]]
    more = len(rows) > q.limit
    return json(TransferPage(items, encode_cursor(items[-1].created_at, str(items[-1].id)) if more else None))


async def shown(request: web.Request, name: str, kind: str) -> web.Response:
    transfer_id = await own(request, name, kind)
    async with pool(request).acquire() as conn:
        return json(out(request, await service.get(conn, transfer_id)))


async def retried(request: web.Request, name: str, kind: str) -> web.Response:
    """A failed transfer sent again."""
    transfer_id = await own(request, name, kind)
    async with mutation(request) as m:
        transfer = await service.lock(m.conn, transfer_id)
        after = await approval.resend(m.conn, settings(request), transfer, btc=request.app[BTC_RPC],
                                      actor=actor(request))
        return await m.respond(json(out(request, after)))


async def cancelled(request: web.Request, name: str, kind: str) -> web.Response:
    """A transfer no transaction pays, cancelled (who may, and when, is the engine's rule)."""
    transfer_id = await own(request, name, kind)
    body = await decode_body(request, TransferCancel) if request.body_exists else TransferCancel()
    async with mutation(request) as m:
        transfer = await service.lock(m.conn, transfer_id)
        after = await cancellation.cancel(m.conn, settings(request), request.app[BTC_RPC], transfer,
                                          operator=who(request).operator, not_sent=body.not_sent, actor=actor(request))
        return await m.respond(json(out(request, after)))


async def sent_externally(request: web.Request, name: str, kind: str, by: str) -> web.Response:
    """The transaction a wallet of one's own (`by`) sent for an EVM transfer, recorded (checked on the node)."""
    transfer_id = await own(request, name, kind)
    body = await decode_body(request, SentTransaction)
    async with mutation(request) as m:
        transfer = await service.lock(m.conn, transfer_id)
        if transfer.method != "external":
            raise InvalidInput(f"this {kind} is not sent by {by}",
                               [{"field": "tx_hash", "message": f"it is sent by {transfer.method or 'nobody yet'}"}])
        after = await evm.submit_external(m.conn, settings(request), transfer, body.tx_hash, actor=actor(request))
        return await m.respond(json(out(request, after)))
