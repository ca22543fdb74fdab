"""Issuing, claiming, approving and cancelling refunds, each one transaction that locks the payment or
the refund, moves it by a guarded UPDATE whose sources come from the state machine (rules.py), and
writes its audit row, ledger entries and events with it."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import msgspec

from beanpay import audit, capability, queries
from beanpay.chains.bitcoin.addresses import InvalidAddress as InvalidBitcoinAddress
from beanpay.chains.bitcoin.addresses import Network, script_for
from beanpay.chains.evm.addresses import InvalidAddress as InvalidEvmAddress
from beanpay.chains.evm.addresses import checksummed
from beanpay.db import Connection, fetchrow_as
from beanpay.engine import ledger
from beanpay.engine.lifecycle import IllegalTransition
from beanpay.engine.orders import lock_order
from beanpay.engine.payments import PAID, PaymentStatus
from beanpay.engine.refunds import rules
from beanpay.engine.refunds.rules import AmountError, RefundStatus
from beanpay.engine.settlement import resolve
from beanpay.errors import Conflict, Gone, InvalidInput, NotFound
from beanpay.events import catalog
from beanpay.events.outbox import Event, emit_many
from beanpay.events.payloads import RefundPayload
from beanpay.money import MAX_FIAT

SQL = queries.load("beanpay.engine", "refunds.sql")
BITCOIN = "btc"
CLAIM_PURPOSE = "refund-claim"


class RefundRow(msgspec.Struct):
    id: uuid.UUID
    payment_id: uuid.UUID
    order_id: uuid.UUID
    shop_id: uuid.UUID
    wallet_id: uuid.UUID | None
    chain: str
    asset: str
    decimals: int
    token_address: str | None
    variant: str
    fiat_amount: Decimal | None
    fiat_currency: str | None
    rate: Decimal | None
    fee_bps: int
    amount: int | None
    status: str
    method: str | None
    destination: str | None
    claim_expires_at: dt.datetime
    psbt: str | None
    txid: str | None
    network_fee: int | None
    change_index: int | None
    reason: str | None
    failure: str | None
    created_at: dt.datetime
    claimed_at: dt.datetime | None
    approved_at: dt.datetime | None
    sent_at: dt.datetime | None
    completed_at: dt.datetime | None
    settled_at: dt.datetime | None
    updated_at: dt.datetime
    version: int


class PaidPayment(msgspec.Struct):
    id: uuid.UUID
    order_id: uuid.UUID
    shop_id: uuid.UUID
    order_status: str
    wallet_id: uuid.UUID | None
    chain: str
    crypto_currency: str
    decimals: int
    token_address: str | None
    crypto_amount: int
    amount_received: int
    fiat_amount: Decimal
    fiat_currency: str
    status: str
    resolution: str | None
    credited: int
    held: int


def claim_token(refund_id: uuid.UUID, secret: str) -> str:
    """The customer's refund link: unguessable, nothing stored (a MAC of the refund's id)."""
    return capability.token(CLAIM_PURPOSE, refund_id, secret)


def claimed_refund(token: str, secret: str) -> uuid.UUID | None:
    return capability.subject(CLAIM_PURPOSE, token, secret)


def payload(r: RefundRow, secret: str) -> RefundPayload:
    return RefundPayload(r.id, r.order_id, r.payment_id, r.shop_id, r.chain, r.asset, r.decimals, r.variant,
                         None if r.amount is None else str(r.amount), r.status, r.destination, r.txid,
                         claim_token(r.id, secret), r.failure)


_EVENTS = {RefundStatus.AWAITING_CLAIM: catalog.REFUND_CREATED, RefundStatus.AWAITING_APPROVAL: catalog.REFUND_CLAIMED,
           RefundStatus.AWAITING_SIGNATURE: catalog.REFUND_APPROVED, RefundStatus.SENDING: catalog.REFUND_APPROVED,
           RefundStatus.IN_FLIGHT: catalog.REFUND_IN_FLIGHT, RefundStatus.COMPLETED: catalog.REFUND_COMPLETED,
           RefundStatus.CANCELLED: catalog.REFUND_CANCELLED, RefundStatus.FAILED: catalog.REFUND_FAILED}


async def record(conn: Connection, secret: str, before: RefundRow | None, after: RefundRow, actor: audit.Actor,
                 *, reverted: bool = False) -> None:
    """The audit row and event of a refund's move (a completed refund a reorg took back is `refund.reverted`)."""
    await audit.record(conn, actor, f"refund.{after.status}", "refund", after.id,
                       before=None if before is None else {"status": before.status},
                       after={"status": after.status, "amount": None if after.amount is None else str(after.amount)})
    kind = catalog.REFUND_REVERTED if reverted else _EVENTS[RefundStatus(after.status)]
    events: list[Event[Any]] = [Event(kind, after.order_id, payload(after, secret))]
    if after.status == RefundStatus.COMPLETED and not reverted:
        events.append(Event(catalog.PAYMENT_REFUNDED, after.order_id, payload(after, secret)))
    await emit_many(conn, events)


async def lock(conn: Connection, refund_id: uuid.UUID) -> RefundRow:
    row = await fetchrow_as(conn, SQL.lock, RefundRow, refund_id)
    if row is None:
        raise NotFound("no such refund", refund_id=str(refund_id))
    return row


async def get(conn: Connection, refund_id: uuid.UUID) -> RefundRow:
    row = await fetchrow_as(conn, SQL.get, RefundRow, refund_id)
    if row is None:
        raise NotFound("no such refund", refund_id=str(refund_id))
    return row


def _field(exc: AmountError) -> InvalidInput:
    return InvalidInput("the refund is not possible", [{"field": exc.field, "message": exc.message}])


async def issue(conn: Connection, *, order_id: uuid.UUID, variant: str, amount: int | None,
                fiat_amount: Decimal | None, fee_bps: int, reason: str | None, rate: Decimal | None,
                claim_ttl: dt.timedelta, secret: str, actor: audit.Actor) -> RefundRow:
    """A refund of an order's payment. The payment row stays locked to commit, so concurrent refunds of
    one payment are decided in turn and never exceed what it received. An unresolved underpaid or late
    payment is resolved as refunded (its order closes); a paid one keeps its order as it is."""
    order = await lock_order(conn, order_id)
    paid = await fetchrow_as(conn, SQL.lock_payment, PaidPayment, order_id, sorted(rules.HOLDING))
    if paid is None:
        raise Conflict("the order has no payment")
    status = PaymentStatus(paid.status)
    if paid.resolution == "settled":
        raise Conflict("this payment's overpayment was settled outside beanpay")
    if status in (PaymentStatus.UNDERPAID, PaymentStatus.LATE) and paid.resolution is None:
        await resolve(conn, order, "refund", actor)
        paid = await fetchrow_as(conn, SQL.lock_payment, PaidPayment, order_id, sorted(rules.HOLDING))
        assert paid is not None
    elif not (status in PAID or paid.resolution in ("accepted", "refunded")):
        raise Conflict(f"the payment is {status.value}; only money received and confirmed can be refunded",
                       payment_status=status.value)
    try:
        gross = None if variant == "fiat_fixed" else rules.gross_amount(
            variant, received=paid.credited, expected=paid.crypto_amount, fiat_paid=paid.fiat_amount, rate=rate,
            decimals=paid.decimals, fiat_amount=fiat_amount, custom=amount)
        net = None if gross is None else rules.net_amount(gross, fee_bps)
        if net is not None:
            rules.check_refundable(net, received=paid.credited, held=paid.held)
    except AmountError as exc:
        raise _field(exc) from None
    if variant == "fiat_fixed" and fiat_amount is None:
        raise _field(AmountError("fiat_amount", "a fiat_fixed refund needs its fiat amount"))
    if fiat_amount is not None and not (0 < fiat_amount <= MAX_FIAT and fiat_amount == round(fiat_amount, 2)):
        raise _field(AmountError("fiat_amount", f"above zero, at most {MAX_FIAT}, in cents"))
    row = await fetchrow_as(
        conn, SQL.add, RefundRow, uuid.uuid4(), paid.id, order_id, paid.shop_id, paid.wallet_id, paid.chain,
        paid.crypto_currency, paid.decimals, paid.token_address, variant,
        fiat_amount if variant == "fiat_fixed" else (paid.fiat_amount if variant == "fiat_today" else None),
        paid.fiat_currency.strip() if variant in ("fiat_fixed", "fiat_today") else None,
        rate if variant == "fiat_today" else None, fee_bps, net,
        dt.datetime.now(dt.UTC) + claim_ttl, reason, _uuid(actor.id))
    assert row is not None
    await record(conn, secret, None, row, actor)
    return row


def check_destination(chain: str, address: str, network: Network) -> tuple[str, bytes | None]:
    """The customer's address as it is paid: the Bitcoin script, or the checksummed EVM address."""
    try:
        if chain == BITCOIN:
            return address.strip(), script_for(address, network)
        return checksummed(address), None
    except (InvalidBitcoinAddress, InvalidEvmAddress) as exc:
        raise InvalidInput("the address cannot be paid", [{"field": "address", "message": str(exc)}]) from None


async def claim(conn: Connection, refund_id: uuid.UUID, address: str, *, network: Network, secret: str,
                actor: audit.Actor) -> RefundRow:
    """The customer's address, validated for the refund's chain; the address is watched from now on."""
    before = await lock(conn, refund_id)
    if before.status != RefundStatus.AWAITING_CLAIM:
        raise IllegalTransition("refund", before.status, RefundStatus.AWAITING_APPROVAL)
    if before.claim_expires_at <= dt.datetime.now(dt.UTC):
        raise Gone("this refund link has expired; ask the shop for a new one")
    destination, script = check_destination(before.chain, address, network)
    if await conn.fetchval(SQL.payment_address, before.chain, destination):
        raise InvalidInput("the address cannot be paid", [
            {"field": "address", "message": "this is a beanpay payment address, not your own wallet's"}])
    await conn.execute(SQL.watch_destination, before.chain, destination, script)
    after = await fetchrow_as(conn, SQL.claim, RefundRow, refund_id, destination)
    if after is None:
        raise Gone("this refund link has expired; ask the shop for a new one")
    await record(conn, secret, before, after, actor)
    return after


async def approve(conn: Connection, before: RefundRow, *, amount: int, rate: Decimal | None, method: str,
                  status: RefundStatus, secret: str, actor: audit.Actor) -> RefundRow:
    """Approve a claimed refund at `amount` (checked again against the payment's refundable rest), to be
    sent by `method`: the shop's balance is debited now, once."""
    rules.transition(before.status, status)
    paid = await fetchrow_as(conn, SQL.lock_payment, PaidPayment, before.order_id,
                             sorted(rules.HOLDING - {RefundStatus.AWAITING_CLAIM}))  # this one counts below
    assert paid is not None
    held = paid.held - (before.amount or 0) if before.status != RefundStatus.AWAITING_CLAIM else paid.held
    try:
        rules.check_refundable(amount, received=paid.credited, held=max(held, 0))
    except AmountError as exc:
        raise _field(exc) from None
    after = await fetchrow_as(conn, SQL.approve, RefundRow, before.id, status.value, amount, rate, method,
                              rules.sources(status), _uuid(actor.id))
    if after is None:
        raise IllegalTransition("refund", before.status, status)
    await ledger.post_refund(conn, "refund", shop_id=after.shop_id, chain=after.chain, asset=after.asset,
                             amount=amount, payment_id=after.payment_id, refund_id=after.id,
                             memo=f"refund {after.id} of order {after.order_id} approved")
    await record(conn, secret, before, after, actor)
    return after


async def move(conn: Connection, before: RefundRow, target: RefundStatus, *, secret: str, actor: audit.Actor,
               failure: str | None = None, reverted: bool = False) -> RefundRow:
    """One guarded move with its audit row and event; ledger entries go with completing and cancelling."""
    rules.transition(before.status, target)
    after = await fetchrow_as(conn, SQL.move, RefundRow, before.id, target.value, rules.sources(target), failure)
    if after is None:
        raise IllegalTransition("refund", before.status, target)
    if target is RefundStatus.COMPLETED and await conn.fetchval(SQL.mark_settled, after.id):
        assert after.amount is not None
        await ledger.post_refund(conn, "refund_sent", shop_id=after.shop_id, chain=after.chain, asset=after.asset,
                                 amount=after.amount, payment_id=after.payment_id, refund_id=after.id,
                                 memo=f"refund {after.id} sent in {after.txid}")
        if after.network_fee:  # a PSBT the shop's own (or the platform's) wallet paid the fee of
            await ledger.post_refund(conn, "refund_fee", shop_id=after.shop_id, chain=after.chain,
                                     asset=after.asset, amount=after.network_fee, payment_id=after.payment_id,
                                     refund_id=after.id, memo=f"network fee of refund {after.id}")
    if target is RefundStatus.CANCELLED and before.approved_at is not None and after.amount is not None:
        await ledger.post_refund(conn, "refund_cancelled", shop_id=after.shop_id, chain=after.chain,
                                 asset=after.asset, amount=after.amount, payment_id=after.payment_id,
                                 refund_id=after.id, memo=f"refund {after.id} cancelled")
    await record(conn, secret, before, after, actor, reverted=reverted)
    return after


async def sent(conn: Connection, before: RefundRow, txid: str, *, secret: str, actor: audit.Actor) -> RefundRow:
    rules.transition(before.status, RefundStatus.IN_FLIGHT)
    after = await fetchrow_as(conn, SQL.sent, RefundRow, before.id, txid, rules.sources(RefundStatus.IN_FLIGHT))
    if after is None:
        raise IllegalTransition("refund", before.status, RefundStatus.IN_FLIGHT)
    await record(conn, secret, before, after, actor)
    return after


def _uuid(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None
