"""Refunds over HTTP: the shop issues, approves, signs and cancels; the customer's link shows the refund
and takes their address. A refund the platform pays is approved only as far as the shop's custodial
balance covers it: a claim it does not cover waits for the merchant's approval."""

from __future__ import annotations

import datetime as dt
import uuid

from aiohttp import web

from beanpay.api.body import decode_body
from beanpay.api.custody.schemas import (
    RefundClaim,
    RefundCreate,
    RefundView,
    SentTransaction,
    SignedPsbt,
    Transfer,
    TransferCancel,
    TransferPage,
    TransferQuery,
)
from beanpay.api.custody.transfers import (
    cancelled,
    out,
    own,
    page_of_shop,
    rate_now,
    retried,
    secret,
    sent_externally,
    shown,
)
from beanpay.api.guard import allow, needs, public
from beanpay.api.http import actor, json, path_uuid
from beanpay.api.idempotency import mutation
from beanpay.api.routing import Routes
from beanpay.api.state import BTC_RPC, pool, settings
from beanpay.db import Connection
from beanpay.engine.lightning import refunds as lightning_refunds
from beanpay.engine.transfers import approval, bitcoin, refunds, rules, service
from beanpay.engine.transfers.rules import TransferStatus
from beanpay.engine.transfers.service import TransferRow
from beanpay.errors import InvalidInput, NotFound

routes = Routes()
WRITE = needs("refunds:create", "the shop's owners and managers, its integrations, operators")
READ = needs("orders:read", "the shop's people, its integrations, operators")


@routes.add("POST", "/v1/orders/{order_id}/refunds", summary="Refund an order's payment (the customer claims it)",
            tag="refunds", body=RefundCreate, response=Transfer, status=201, policy=WRITE,
            errors=(400, 401, 403, 404, 409, 422, 503))
async def create_refund(request: web.Request) -> web.Response:
    order_id = path_uuid(request, "order_id")
    body = await decode_body(request, RefundCreate)
    s = settings(request)
    async with mutation(request) as m:
        shop = await service.shop_of_order(m.conn, order_id)
        if shop is None:
            raise NotFound("no such order", order_id=str(order_id))
        allow(request, shop)
        rate = None
        if body.variant == "fiat_today":
            pay = await service.payment_asset(m.conn, order_id)
            if pay is None:
                raise NotFound("the order has no payment")
            rate = await rate_now(request, pay.chain, pay.crypto_currency, pay.fiat_currency)
        refund = await refunds.issue(
            m.conn, order_id=order_id, variant=body.variant, amount=None if body.amount is None else int(body.amount),
            fiat_amount=body.fiat_amount, fee_bps=body.fee_bps, reason=body.reason, rate=rate,
            claim_ttl=dt.timedelta(seconds=s.refund_claim_seconds), secret=secret(request), actor=actor(request),
            minimums=s.transfer_minimums)
        return await m.respond(json(out(request, refund), status=201))


async def _own(request: web.Request) -> uuid.UUID:
    return await own(request, "refund_id", "refund")


@routes.add("GET", "/v1/refunds/{refund_id}", summary="Get a refund", tag="refunds", response=Transfer,
            policy=READ, errors=(401, 403, 404))
async def get_refund(request: web.Request) -> web.Response:
    return await shown(request, "refund_id", "refund")


@routes.add("GET", "/v1/shops/{shop_id}/refunds", summary="A shop's refunds, newest first", tag="refunds",
            query=TransferQuery, response=TransferPage, policy=READ, errors=(401, 403, 422))
async def list_refunds(request: web.Request) -> web.Response:
    return await page_of_shop(request, "refund")


@routes.add("POST", "/v1/refunds/{refund_id}/approve",
            summary="Approve a claimed refund: the shop's balance is debited and it is prepared for sending",
            tag="refunds", response=Transfer, policy=WRITE, errors=(401, 403, 404, 409, 422, 503))
async def approve_refund(request: web.Request) -> web.Response:
    refund_id = await _own(request)
    async with mutation(request) as m:
        refund = await service.lock(m.conn, refund_id)
        rules.transition(refund.status, TransferStatus.AWAITING_SIGNATURE if refund.chain == service.BITCOIN
                         else TransferStatus.SENDING)  # a clear 409 for an approved or unclaimed one
        rate = None
        if refund.variant == "fiat_fixed":
            assert refund.fiat_currency is not None
            rate = await rate_now(request, refund.chain, refund.asset, refund.fiat_currency)
        after = await approval.approve(m.conn, settings(request), refund, rate=rate, btc=request.app[BTC_RPC],
                                       actor=actor(request))
        return await m.respond(json(out(request, after)))


@routes.add("POST", "/v1/refunds/{refund_id}/signed-psbt",
            summary="Upload the refund's PSBT signed by the wallet's owner; beanpay checks and broadcasts it",
            tag="refunds", body=SignedPsbt, response=Transfer, policy=WRITE, errors=(400, 401, 403, 404, 409, 422))
async def sign_refund(request: web.Request) -> web.Response:
    refund_id = await _own(request)
    body = await decode_body(request, SignedPsbt)
    async with mutation(request) as m:
        refund = await service.lock(m.conn, refund_id)
        if refund.method != "psbt":
            raise InvalidInput("this refund is not signed as a PSBT",
                               [{"field": "psbt", "message": "not a PSBT refund"}])
        (after,) = await bitcoin.submit(m.conn, request.app[BTC_RPC], [refund], body.psbt, secret=secret(request),
                                        actor=actor(request))
        return await m.respond(json(out(request, after)))


@routes.add("POST", "/v1/refunds/{refund_id}/transaction",
            summary="Record the transaction the merchant's own wallet sent for an EVM refund (checked on the node)",
            tag="refunds", body=SentTransaction, response=Transfer, policy=WRITE, errors=(400, 401, 403, 404, 409, 422))
async def refund_sent(request: web.Request) -> web.Response:
    return await sent_externally(request, "refund_id", "refund", "the merchant's own wallet")


@routes.add("POST", "/v1/refunds/{refund_id}/retry",
            summary="Send a failed refund again (its transaction was dropped or replaced, or a limit was reached)",
            tag="refunds", response=Transfer, policy=WRITE, errors=(401, 403, 404, 409, 503))
async def retry_refund(request: web.Request) -> web.Response:
    return await retried(request, "refund_id", "refund")


@routes.add("POST", "/v1/refunds/{refund_id}/cancel",
            summary="Cancel a refund no transaction pays: the shop before approval (and its own wallet's after); "
                    "the platform's money once approved, an operator (stating `not_sent` for their own wallet's)",
            tag="refunds", body=TransferCancel, response=Transfer, policy=WRITE, errors=(400, 401, 403, 404, 409, 422))
async def cancel_refund(request: web.Request) -> web.Response:
    return await cancelled(request, "refund_id", "refund")


def _claimed(request: web.Request) -> uuid.UUID:
    refund_id = service.claimed_refund(request.match_info["token"], secret(request))
    if refund_id is None:
        raise NotFound("no such refund link")
    return refund_id


def view(r: TransferRow) -> RefundView:
    assert r.kind == "refund"
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
    invoice = None if body.lightning_invoice is None else await checked_invoice(request, refund_id,
                                                                                body.lightning_invoice)
    async with mutation(request) as m:
        return await m.respond(json(view(await claim_with(m.conn, request, refund_id, body.address or "", invoice))))


def looks_like_invoice(text: str) -> bool:
    return text.strip().lower().startswith("ln")


async def checked_invoice(request: web.Request, refund_id: uuid.UUID, bolt11: str) -> tuple[str, str]:
    """A customer's Lightning invoice for the refund, checked by the node that would pay it (before any
    transaction opens): (the invoice, its payment hash)."""
    async with pool(request).acquire() as conn:
        refund = await service.get(conn, refund_id)
    return bolt11.strip(), await lightning_refunds.prepare_claim(pool(request), settings(request), refund, bolt11)


async def claim_with(conn: Connection, request: web.Request, refund_id: uuid.UUID, address: str,
                     invoice: tuple[str, str] | None = None) -> TransferRow:
    """The customer names their address, or gives a checked Lightning invoice (the claim page posts here
    too); an amount that is a fact of the payment is approved at once, there being no choice to approve."""
    s = settings(request)
    if invoice is not None:
        after = await lightning_refunds.claim(conn, refund_id, *invoice, secret=secret(request), actor=actor(request))
    else:
        after = await refunds.claim(conn, refund_id, address, network=s.btc_network, secret=secret(request),
                                    actor=actor(request))
    if after.variant in rules.AUTO_APPROVED:
        try:
            after = await approval.approve(conn, s, after, rate=None, btc=request.app[BTC_RPC], actor=actor(request))
        except service.NotCovered:  # the claim stands; the merchant approves once the balance covers it
            pass
    return after
