"""Payouts over HTTP: a merchant asks for its custodial balance at its own address; operators approve,
batch Bitcoin payouts into one PSBT their wallet signs, and follow them."""

from __future__ import annotations

import uuid

from aiohttp import web

from beanpay.api.body import decode_body, decode_query
from beanpay.api.custody.schemas import (
    Batch,
    BatchCreate,
    PayoutCreate,
    SentTransaction,
    SignedPsbt,
    Transfer,
    TransferCancel,
    TransferPage,
    TransferQuery,
)
from beanpay.api.custody.transfers import cancelled, out, own, page_of_shop, retried, secret, sent_externally, shown
from beanpay.api.guard import OPERATORS, OPERATORS_2FA, allow, needs
from beanpay.api.http import actor, json, path_uuid
from beanpay.api.idempotency import mutation
from beanpay.api.routing import Routes
from beanpay.api.state import BTC_RPC, pool, settings
from beanpay.engine.transfers import bitcoin, payouts, service
from beanpay.engine.transfers.service import TransferRow
from beanpay.errors import NotFound

routes = Routes()
ASK = needs("wallets:manage", "the shop's owners, operators")
READ = needs("ledger:read", "the shop's owners and managers, its integrations, operators")


async def _own(request: web.Request) -> uuid.UUID:
    return await own(request, "payout_id", "payout")


@routes.add("POST", "/v1/shops/{shop_id}/payouts",
            summary="Ask for a payout of the shop's balance the platform holds, to the merchant's own address",
            tag="payouts", body=PayoutCreate, response=Transfer, status=201, policy=ASK,
            errors=(400, 401, 403, 404, 409, 422))
async def create_payout(request: web.Request) -> web.Response:
    shop_id = path_uuid(request, "shop_id")
    allow(request, shop_id)
    body = await decode_body(request, PayoutCreate)
    async with mutation(request) as m:
        payout = await payouts.request(m.conn, settings(request), shop_id=shop_id, chain=body.chain,
                                       asset=body.asset, amount=int(body.amount), address=body.address,
                                       reason=body.reason, actor=actor(request))
        return await m.respond(json(out(request, payout), status=201))


@routes.add("GET", "/v1/shops/{shop_id}/payouts", summary="A shop's payouts, newest first", tag="payouts",
            query=TransferQuery, response=TransferPage, policy=READ, errors=(401, 403, 422))
async def list_payouts(request: web.Request) -> web.Response:
    return await page_of_shop(request, "payout")


@routes.add("GET", "/v1/payouts", summary="Payouts waiting for an operator's approval, oldest first",
            tag="payouts", query=TransferQuery, response=TransferPage, policy=OPERATORS, errors=(401, 403, 422))
async def pending_payouts(request: web.Request) -> web.Response:
    q = decode_query(request, TransferQuery)
    async with pool(request).acquire() as conn:
        rows = await service.awaiting_approval(conn, q.limit)
    return json(TransferPage([out(request, r) for r in rows], None))


@routes.add("GET", "/v1/payouts/{payout_id}", summary="Get a payout", tag="payouts", response=Transfer,
            policy=READ, errors=(401, 403, 404))
async def get_payout(request: web.Request) -> web.Response:
    return await shown(request, "payout_id", "payout")


@routes.add("POST", "/v1/payouts/{payout_id}/approve",
            summary="Approve a payout: the shop's custodial balance is debited and it is prepared for sending",
            tag="payouts", response=Transfer, policy=OPERATORS_2FA, errors=(401, 403, 404, 409))
async def approve_payout(request: web.Request) -> web.Response:
    payout_id = await _own(request)
    async with mutation(request) as m:
        payout = await service.lock(m.conn, payout_id)
        after = await payouts.approve(m.conn, settings(request), payout, actor=actor(request))
        return await m.respond(json(out(request, after)))


@routes.add("POST", "/v1/payouts/{payout_id}/cancel",
            summary="Cancel a payout no transaction pays: the merchant before approval; after, an operator (for one "
                    "their own wallet sends, stating `not_sent`)",
            tag="payouts", body=TransferCancel, response=Transfer, policy=ASK, errors=(400, 401, 403, 404, 409, 422))
async def cancel_payout(request: web.Request) -> web.Response:
    return await cancelled(request, "payout_id", "payout")


@routes.add("POST", "/v1/payouts/{payout_id}/retry", summary="Send a failed payout again", tag="payouts",
            response=Transfer, policy=OPERATORS, errors=(401, 403, 404, 409, 503))
async def retry_payout(request: web.Request) -> web.Response:
    return await retried(request, "payout_id", "payout")


@routes.add("POST", "/v1/payouts/{payout_id}/transaction",
            summary="Record the transaction the operator's own wallet sent for an EVM payout (checked on the node)",
            tag="payouts", body=SentTransaction, response=Transfer, policy=OPERATORS,
            errors=(400, 401, 403, 404, 409, 422))
async def payout_sent(request: web.Request) -> web.Response:
    return await sent_externally(request, "payout_id", "payout", "a wallet of your own")


def _batch(request: web.Request, rows: list[TransferRow]) -> Batch:
    return Batch(rows[0].batch_id if rows else None, rows[0].psbt if rows else None,
                 str(sum(r.network_fee or 0 for r in rows)), [out(request, r) for r in rows])


@routes.add("POST", "/v1/payout-batches",
            summary="Put the approved Bitcoin payouts into one transaction: a PSBT for the operator's wallet",
            tag="payouts", body=BatchCreate, response=Batch, status=201, policy=OPERATORS,
            errors=(400, 401, 403, 409, 422, 503))
async def create_batch(request: web.Request) -> web.Response:
    body = await decode_body(request, BatchCreate)
    async with mutation(request) as m:
        rows = await payouts.batch(m.conn, settings(request), request.app[BTC_RPC], limit=body.limit)
        return await m.respond(json(_batch(request, rows), status=201))


@routes.add("POST", "/v1/payout-batches/{batch_id}/signed-psbt",
            summary="Upload a batch's PSBT signed by the operator's wallet; beanpay checks and broadcasts it",
            tag="payouts", body=SignedPsbt, response=Batch, policy=OPERATORS, errors=(400, 401, 403, 404, 409, 422))
async def sign_batch(request: web.Request) -> web.Response:
    batch_id = path_uuid(request, "batch_id")
    body = await decode_body(request, SignedPsbt)
    async with mutation(request) as m:
        rows = await payouts.of_batch(m.conn, batch_id)
        if not rows:
            raise NotFound("no such batch", batch_id=str(batch_id))
        sent = await bitcoin.submit(m.conn, request.app[BTC_RPC], rows, body.psbt, secret=secret(request),
                                    actor=actor(request))
        return await m.respond(json(_batch(request, sent)))
