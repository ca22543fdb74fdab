"""Refunds over Lightning: the customer gives a BOLT11 invoice for exactly the refund's amount instead of an
address, and it is paid from the node that received the money, only with a macaroon that may pay (the
shop's own, or the platform's from the environment) and within that macaroon's daily limit. Without one the
refund goes on chain as before.

Paying is crash-safe because lnd pays a payment hash once: the attempt is recorded (its node and hash) before
the node is asked, and asking again after a crash is answered "already paid" (then it completed) or "in
transition" (asked again later), never with a second payment.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass
from decimal import Decimal

import msgspec
import structlog

from beanpay import audit, queries
from beanpay.chains.lightning.lnd import DecodedInvoice, LndClient, LndError, LndUnavailable
from beanpay.config import Settings
from beanpay.db import Connection, Database, fetchrow_as
from beanpay.engine.lifecycle import IllegalTransition
from beanpay.engine.lightning import nodes
from beanpay.engine.lightning.nodes import NodeRow
from beanpay.engine.transfers import service
from beanpay.engine.transfers.rules import TransferStatus
from beanpay.engine.transfers.service import TransferRow
from beanpay.engine.webhooks.egress import connector_options
from beanpay.errors import Gone, InvalidInput

log = structlog.get_logger("lightning")
SQL = queries.load("beanpay.engine", "lightning.sql")
DESTINATION_PREFIX = "lightning:"
BOLT11 = re.compile(r"ln[a-z0-9]{1,4000}", re.IGNORECASE)  # bech32: a customer's text goes into a node's URL
MIN_LEFT = dt.timedelta(minutes=10)  # an invoice about to expire cannot wait for the merchant's approval


@dataclass(frozen=True)
class Payer:
    """A node that may pay refunds: its row, a client with the paying macaroon, and its daily limit."""

    node: NodeRow
    client: LndClient
    daily_limit_msat: int


class _PayNode(msgspec.Struct):
    id: uuid.UUID
    pay_macaroon_sealed: bytes | None
    pay_daily_limit_msat: Decimal | None


async def _capability(conn: Connection, settings: Settings, shop_id: uuid.UUID) \
        -> tuple[NodeRow, _PayNode | None] | None:
    """The node serving the shop and, for a shop's own node, its paying macaroon, if one may pay."""
    node = await nodes.serving(conn, settings, shop_id)
    if node is None:
        return None
    if node.custodial:
        return (node, None) if settings.lightning_pay_macaroon and settings.lightning_pay_daily_limit_sat else None
    row = await fetchrow_as(conn, SQL.pay_node, _PayNode, node.id)
    if row is None or row.pay_macaroon_sealed is None or not row.pay_daily_limit_msat:
        return None
    return node, row


async def may_pay(conn: Connection, settings: Settings, shop_id: uuid.UUID) -> bool:
    """Whether the shop's refunds can be paid over Lightning."""
    return await _capability(conn, settings, shop_id) is not None


async def payer(conn: Connection, settings: Settings, refund: TransferRow) -> Payer | None:
    """Who pays this refund over Lightning, if anyone may: a node of the custody that received its payment,
    never another's. The platform's money: the platform's node, with its paying macaroon. Money a shop's own
    node received: that very node (the same identity), with the shop's paying macaroon. Money in the shop's
    own wallet: the shop's own node, if it may pay (the shop's money either way), never the platform's."""
    if refund.platform_money:
        node = await nodes.platform(conn, settings)
        if node is None or not (settings.lightning_pay_macaroon and settings.lightning_pay_daily_limit_sat):
            return None
        client = LndClient(node.rest_url, tls_cert_pem=nodes.platform_cert(settings),
                           macaroon_hex=settings.lightning_pay_macaroon)
        return Payer(node, client, settings.lightning_pay_daily_limit_sat * 1000)
    node = await fetchrow_as(conn, SQL.shop_node, NodeRow, refund.shop_id)
    if node is None or (refund.node_id is not None and (node.id, node.pubkey) != (refund.node_id, refund.node_pubkey)):
        return None
    own = await fetchrow_as(conn, SQL.pay_node, _PayNode, node.id)
    if own is None or own.pay_macaroon_sealed is None or not own.pay_daily_limit_msat:
        return None
    assert node.shop_id is not None
    client = LndClient(node.rest_url, tls_cert_pem=node.tls_cert,
                       macaroon_hex=nodes.unseal(settings, node.shop_id, own.pay_macaroon_sealed),
                       connector=connector_options(settings.webhook_allow_private))
    return Payer(node, client, int(own.pay_daily_limit_msat))


def check_invoice(decoded: DecodedInvoice, *, amount: int, own_pubkey: str, now: dt.datetime) -> str | None:
    """What is wrong with a customer's invoice for a refund of `amount` sats, or None. Pure."""
    if decoded.num_msat != amount * 1000:
        return f"the invoice must be for exactly {amount} sat ({amount * 1000} msat), the refund's amount"
    if dt.datetime.fromtimestamp(decoded.timestamp + decoded.expiry, dt.UTC) < now + MIN_LEFT:
        return "the invoice expires too soon; make one valid for at least an hour"
    if decoded.destination == own_pubkey:
        return "the invoice is the shop's own node's"
    return None


def _bad(message: str) -> InvalidInput:
    return InvalidInput("the invoice cannot be paid", [{"field": "lightning_invoice", "message": message}])


async def prepare_claim(db: Database, settings: Settings, refund: TransferRow, bolt11: str) -> str:
    """Check a customer's invoice for this refund before its claim is written (the node decodes it, outside
    any transaction); returns its payment hash."""
    if refund.chain != service.BITCOIN or refund.amount is None:
        raise _bad("only a Bitcoin refund of a known amount can be paid over Lightning; give an address")
    text = bolt11.strip()
    if not BOLT11.fullmatch(text):
        raise _bad("not a BOLT11 invoice (ln..., letters and digits only)")
    async with db.acquire() as conn:
        who = await payer(conn, settings, refund)
    if who is None:
        raise _bad("this refund is paid back on chain, from the wallet that received the payment; give a "
                   "Bitcoin address" if refund.platform_money or refund.wallet_id is not None else
                   "the shop's node that received this payment cannot pay it back now; ask the shop")
    try:
        decoded = await who.client.decode(text)
    except LndError:  # the node's own words are not passed on: they describe the node, not the invoice
        raise _bad("not an invoice this node can pay") from None
    except LndUnavailable:
        raise _bad("the shop's Lightning node cannot be reached now; give a Bitcoin address") from None
    finally:
        await who.client.close()
    problem = check_invoice(decoded, amount=refund.amount, own_pubkey=who.node.pubkey, now=dt.datetime.now(dt.UTC))
    if problem is not None:
        raise _bad(problem)
    return decoded.payment_hash


async def claim(conn: Connection, refund_id: uuid.UUID, bolt11: str, payment_hash: str, *, secret: str,
                actor: audit.Actor) -> TransferRow:
    before = await service.lock(conn, refund_id)
    if before.kind != "refund" or before.status != TransferStatus.AWAITING_CLAIM:
        raise IllegalTransition("refund", before.status, TransferStatus.AWAITING_APPROVAL)
    if await conn.fetchval(SQL.invoice_claimed, DESTINATION_PREFIX + payment_hash):
        raise _bad("this invoice already claims another refund; make a new one for this refund")
    after = await fetchrow_as(conn, SQL.claim_with_invoice, TransferRow, refund_id, DESTINATION_PREFIX + payment_hash,
                              bolt11.strip())
    if after is None:
        raise Gone("this refund link has expired; ask the shop for a new one")
    await service.record(conn, secret, before, after, actor)
    return after


def by_lightning(transfer: TransferRow) -> bool:
    return (transfer.destination or "").startswith(DESTINATION_PREFIX)


class _Due(msgspec.Struct):
    id: uuid.UUID
    shop_id: uuid.UUID
    amount: int
    status: str
    lightning_invoice: str
    sender: str | None
    txid: str | None


async def pay_due(db: Database, settings: Settings, *, batch: int = 20) -> int:
    """Pay the approved Lightning refunds; returns how many completed."""
    async with db.acquire() as conn:
        due = [r["id"] for r in await conn.fetch(SQL.due_lightning_refunds, batch)]
    done = 0
    for refund_id in due:
        done += await _pay_one(db, settings, refund_id)
    return done


async def _pay_one(db: Database, settings: Settings, refund_id: uuid.UUID) -> int:
    secret = settings.jwt_secret or ""
    async with db.transaction() as conn:
        row = await fetchrow_as(conn, SQL.lightning_refund, _Due, refund_id)
        if row is None:
            return 0
        transfer = await service.lock(conn, refund_id)
        who = await payer(conn, settings, transfer)
        if who is None:
            await service.move(conn, transfer, TransferStatus.FAILED, secret=secret, actor=audit.SYSTEM,
                               failure="no macaroon that may pay is configured for this shop's node any more")
            return 0
        assert transfer.destination is not None
        payment_hash = transfer.destination.removeprefix(DESTINATION_PREFIX)
        if row.sender is None:  # a first attempt: against the node's daily limit
            await conn.execute(SQL.lock_pay_limit, str(who.node.id))
            paid = int(await conn.fetchval(SQL.paid_today, str(who.node.id)))
            if paid + row.amount * 1000 > who.daily_limit_msat:
                await who.client.close()
                await service.move(conn, transfer, TransferStatus.FAILED, secret=secret, actor=audit.SYSTEM,
                                   failure=f"the node's daily limit of {who.daily_limit_msat} msat would be passed "
                                           f"({paid} msat paid in the last 24 h)")
                return 0
            await conn.execute(SQL.mark_attempt, refund_id, str(who.node.id), payment_hash)
    try:
        await who.client.pay(row.lightning_invoice, fee_limit_sat=max(10, row.amount // 100))
        failure = None
    except LndError as e:
        if "already paid" in e.message:
            failure = None  # this node paid it before a crash: done
        elif "in transition" in e.message or "in flight" in e.message:
            return 0  # still on its way: asked again next round
        else:
            failure = e.message
    except LndUnavailable:
        return 0  # asked again next round; lnd pays the hash once
    finally:
        await who.client.close()
    async with db.transaction() as conn:
        transfer = await service.lock(conn, refund_id)
        if transfer.status != TransferStatus.SENDING:
            return 0
        if failure is not None:
            log.warning("lightning refund failed", refund=str(refund_id), error=failure)
            await service.move(conn, transfer, TransferStatus.FAILED, secret=secret, actor=audit.SYSTEM,
                               failure=f"the Lightning payment failed: {failure}")
            return 0
        in_flight = await service.sent(conn, transfer, payment_hash, secret=secret, actor=audit.SYSTEM)
        await service.move(conn, in_flight, TransferStatus.COMPLETED, secret=secret, actor=audit.SYSTEM)
    log.info("lightning refund paid", refund=str(refund_id), amount_sat=row.amount)
    return 1
