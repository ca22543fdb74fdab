"""Refunds over HTTP: the shop issues, approves, signs and cancels; the customer's link shows the refund
and takes their address."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from aiohttp import web

from beanpay.api.body import decode_body, decode_query
from beanpay.api.custody.schemas import (
    Refund,
    RefundClaim,
    RefundCreate,
    RefundPage,
    RefundQuery,
    RefundView,
    SentTransaction,
    SignedPsbt,
    UnsignedTransaction,
)
from beanpay.api.guard import allow, needs, public
from beanpay.api.http import actor, json, path_uuid
from beanpay.api.idempotency import mutation
from beanpay.api.routing import Routes
from beanpay.api.rows import encode_cursor, keyset
from beanpay.api.state import BTC_RPC, pool, rates, settings
from beanpay.db import fetch_as
from beanpay.engine.assets import Asset, payable_assets
from beanpay.engine.payment_uri import payment_uri
from beanpay.engine.prices.providers import RateUnavailable
from beanpay.engine.refunds import approval, bitcoin, evm, rules, service
from beanpay.engine.refunds.rules import RefundStatus
from beanpay.engine.refunds.service import SQL, RefundRow
from beanpay.errors import InvalidInput, NotFound, Unavailable

routes = Routes()
WRITE = needs("refunds:create", "the shop's owners and managers, its integrations, operators")
READ = needs("orders:read", "the shop's people, its integrations, operators")


def _secret(request: web.Request) -> str:
    return settings(request).jwt_secret or ""


def _unsigned(request: web.Request, r: RefundRow) -> tuple[UnsignedTransaction | None, str | None]:
    if r.method != "external" or r.amount is None or r.destination is None:
        return None, None
    to, value, data = evm.expected_call(r)
    chain = settings(request).evm_chain(r.chain)
    asset = Asset(r.chain, r.asset, r.decimals, r.token_address, chain.chain_id)
    return UnsignedTransaction(chain.chain_id, to, str(value), data), payment_uri(asset, r.destination, r.amount)


def out(request: web.Request, r: RefundRow) -> Refund:
    token = service.claim_token(r.id, _secret(request))
    unsigned, uri = _unsigned(request, r)
    return Refund(
        id=r.id, order_id=r.order_id, payment_id=r.payment_id, shop_id=r.shop_id, chain=r.chain, asset=r.asset,
        decimals=r.decimals, variant=r.variant, amount=None if r.amount is None else str(r.amount), fee_bps=r.fee_bps,
        fiat_amount=r.fiat_amount, fiat_currency=r.fiat_currency.strip() if r.fiat_currency else None, rate=r.rate,
        status=r.status, method=r.method, custodial=r.wallet_id is None, destination=r.destination,
        claim_token=token, claim_url=f"/refunds/claim/{token}", claim_expires_at=r.claim_expires_at, psbt=r.psbt,
        unsigned_transaction=unsigned, payment_uri=uri,
        txid=r.txid, network_fee=None if r.network_fee is None else str(r.network_fee), failure=r.failure,
        reason=r.reason, created_at=r.created_at, claimed_at=r.claimed_at, approved_at=r.approved_at,
        sent_at=r.sent_at, completed_at=r.completed_at)


async def _rate_now(request: web.Request, chain: str, asset: str, fiat: str) -> Decimal:
    found = payable_assets(settings(request)).get((chain, asset))
    try:
        return (await rates(request).get(found.symbol if found else asset, fiat.strip())).rate
    except RateUnavailable as exc:
        raise Unavailable(f"no fresh {asset}/{fiat} rate; try again shortly", reason=str(exc)) from None


@routes.add("POST", "/v1/orders/{order_id}/refunds", summary="Refund an order's payment (the customer claims it)",
            tag="refunds", body=RefundCreate, response=Refund, status=201, policy=WRITE,
            errors=(400, 401, 403, 404, 409, 422, 503))
async def create_refund(request: web.Request) -> web.Response:
    order_id = path_uuid(request, "order_id")
    body = await decode_body(request, RefundCreate)
    s = settings(request)
    async with mutation(request) as m:
        shop = await m.conn.fetchval(SQL.shop_of_order, order_id)
        if shop is None:
            raise NotFound("no such order", order_id=str(order_id))
        allow(request, shop)
        rate = None
        if body.variant == "fiat_today":
            pay = await m.conn.fetchrow(SQL.payment_asset, order_id)
            if pay is None:
                raise NotFound("the order has no payment")
            rate = await _rate_now(request, pay["chain"], pay["crypto_currency"], pay["fiat_currency"])
        refund = await service.issue(
            m.conn, order_id=order_id, variant=body.variant, amount=None if body.amount is None else int(body.amount),
            fiat_amount=body.fiat_amount, fee_bps=body.fee_bps, reason=body.reason, rate=rate,
            claim_ttl=dt.timedelta(seconds=s.refund_claim_seconds), secret=_secret(request), actor=actor(request))
        return await m.respond(json(out(request, refund), status=201))


async def _own(request: web.Request) -> uuid.UUID:
    refund_id = path_uuid(request, "refund_id")
    async with pool(request).acquire() as conn:
        shop = await conn.fetchval(SQL.shop_of_refund, refund_id)
    if shop is None:
        raise NotFound("no such refund", refund_id=str(refund_id))
    allow(request, shop)
    return refund_id


@routes.add("GET", "/v1/refunds/{refund_id}", summary="Get a refund", tag="refunds", response=Refund,
            policy=READ, errors=(401, 403, 404))
async def get_refund(request: web.Request) -> web.Response:
    refund_id = await _own(request)
    async with pool(request).acquire() as conn:
        return json(out(request, await service.get(conn, refund_id)))


@routes.add("GET", "/v1/shops/{shop_id}/refunds", summary="A shop's refunds, newest first", tag="refunds",
            query=RefundQuery, response=RefundPage, policy=READ, errors=(401, 403, 422))
async def list_refunds(request: web.Request) -> web.Response:
    shop_id = path_uuid(request, "shop_id")
    allow(request, shop_id)
    q = decode_query(request, RefundQuery)
    after, after_id = keyset(q.cursor)
    async with pool(request).acquire() as conn:
        rows = await fetch_as(conn, SQL.of_shop, RefundRow, shop_id, after or dt.datetime.max.replace(tzinfo=dt.UTC),
                              after_id or uuid.UUID(int=2**128 - 1), q.limit + 1)
    items = [out(request, r) for r in rows[: q.limit]]
    more = len(rows) > q.limit
    return json(RefundPage(items, encode_cursor(items[-1].created_at, str(items[-1].id)) if more else None))


@routes.add("POST", "/v1/refunds/{refund_id}/approve",
            summary="Approve a claimed refund: the shop's balance is debited and it is prepared for sending",
            tag="refunds", response=Refund, policy=WRITE, errors=(401, 403, 404, 409, 422, 503))
async def approve_refund(request: web.Request) -> web.Response:
    refund_id = await _own(request)
    async with mutation(request) as m:
        refund = await service.lock(m.conn, refund_id)
        rules.transition(refund.status, RefundStatus.AWAITING_SIGNATURE if refund.chain == service.BITCOIN
                         else RefundStatus.SENDING)  # a clear 409 for an approved or unclaimed one
        rate = None
        if refund.variant == "fiat_fixed":
            assert refund.fiat_currency is not None
            rate = await _rate_now(request, refund.chain, refund.asset, refund.fiat_currency)
        after = await approval.approve(m.conn, settings(request), refund, rate=rate, btc=request.app[BTC_RPC],
                                       actor=actor(request))
        return await m.respond(json(out(request, after)))


@routes.add("POST", "/v1/refunds/{refund_id}/signed-psbt",
            summary="Upload the refund's PSBT signed by the wallet's owner; beanpay checks and broadcasts it",
            tag="refunds", body=SignedPsbt, response=Refund, policy=WRITE, errors=(400, 401, 403, 404, 409, 422))
async def sign_refund(request: web.Request) -> web.Response:
    refund_id = await _own(request)
    body = await decode_body(request, SignedPsbt)
    async with mutation(request) as m:
        refund = await service.lock(m.conn, refund_id)
        if refund.method != "psbt":
            raise InvalidInput("this refund is not signed as a PSBT",
                               [{"field": "psbt", "message": "not a PSBT refund"}])
        after = await bitcoin.submit(m.conn, request.app[BTC_RPC], refund, body.psbt, secret=_secret(request),
                                     actor=actor(request))
        return await m.respond(json(out(request, after)))


@routes.add("POST", "/v1/refunds/{refund_id}/transaction",
            summary="Record the transaction the merchant's own wallet sent for an EVM refund (checked on the node)",
            tag="refunds", body=SentTransaction, response=Refund, policy=WRITE, errors=(400, 401, 403, 404, 409, 422))
async def refund_sent(request: web.Request) -> web.Response:
    refund_id = await _own(request)
    body = await decode_body(request, SentTransaction)
    async with mutation(request) as m:
        refund = await service.lock(m.conn, refund_id)
        if refund.method != "external":
            raise InvalidInput("this refund is not sent by the merchant's own wallet",
                               [{"field": "tx_hash", "message": f"it is sent by {refund.method or 'nobody yet'}"}])
        after = await evm.submit_external(m.conn, settings(request), refund, body.tx_hash, actor=actor(request))
        return await m.respond(json(out(request, after)))


@routes.add("POST", "/v1/refunds/{refund_id}/retry",
            summary="Send a failed refund again (its transaction was dropped or replaced, or a limit was reached)",
            tag="refunds", response=Refund, policy=WRITE, errors=(401, 403, 404, 409, 503))
async def retry_refund(request: web.Request) -> web.Response:
    refund_id = await _own(request)
    async with mutation(request) as m:
        refund = await service.lock(m.conn, refund_id)
        after = await approval.resend(m.conn, settings(request), refund, btc=request.app[BTC_RPC],
                                      actor=actor(request))
        return await m.respond(json(out(request, after)))


@routes.add("POST", "/v1/refunds/{refund_id}/cancel", summary="Cancel a refund not yet on the network",
            tag="refunds", response=Refund, policy=WRITE, errors=(401, 403, 404, 409))
async def cancel_refund(request: web.Request) -> web.Response:
    refund_id = await _own(request)
    async with mutation(request) as m:
        refund = await service.lock(m.conn, refund_id)
        after = await service.move(m.conn, refund, RefundStatus.CANCELLED, secret=_secret(request),
                                   actor=actor(request))
        return await m.respond(json(out(request, after)))


def _claimed(request: web.Request) -> uuid.UUID:
    refund_id = service.claimed_refund(request.match_info["token"], _secret(request))
    if refund_id is None:
        raise NotFound("no such refund link")
    return refund_id


def view(r: RefundRow) -> RefundView:
    return RefundView(r.id, r.chain, r.asset, r.decimals, None if r.amount is None else str(r.amount), r.status,
                      r.destination, r.txid, r.claim_expires_at)


@routes.add("GET", "/v1/refund-claims/{token}", summary="What a customer's refund link shows", tag="refunds",
            response=RefundView, policy=public("whoever holds the link"), errors=(404,))
async def get_refund_claim(request: web.Request) -> web.Response:
    refund_id = _claimed(request)
    async with pool(request).acquire() as conn:
        return json(view(await service.get(conn, refund_id)))


@routes.add("POST", "/v1/refund-claims/{token}", summary="Claim a refund with your own address",
            tag="refunds", body=RefundClaim, response=RefundView, policy=public("whoever holds the link"),
            errors=(400, 404, 409, 410, 422))
async def claim_refund(request: web.Request) -> web.Response:
    refund_id = _claimed(request)
    body = await decode_body(request, RefundClaim)
    s = settings(request)
    async with mutation(request) as m:
        after = await service.claim(m.conn, refund_id, body.address, network=s.btc_network, secret=_secret(request),
                                    actor=actor(request))
        if after.variant in rules.AUTO_APPROVED:  # the amount is a fact of the payment: no choice to approve
            after = await approval.approve(m.conn, s, after, rate=None, btc=request.app[BTC_RPC],
                                           actor=actor(request))
        return await m.respond(json(view(after)))
