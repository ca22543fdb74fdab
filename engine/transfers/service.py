"""Transfers, the money going out (refunds and payouts): each move one transaction that locks the
transfer, moves it by a guarded UPDATE whose sources come from the state machine (rules.py), and writes
its audit row, ledger entries and event with it. Refund- and payout-specific steps are in refunds.py
and payouts.py; sending is bitcoin.py and evm.py, following them tracking.py and watchdog.py."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import msgspec

from beanpay import audit, capability, queries
from beanpay.db import Connection, fetch_as, fetch_one, fetchrow_as
from beanpay.engine import ledger
from beanpay.engine.lifecycle import IllegalTransition
from beanpay.engine.transfers import rules
from beanpay.engine.transfers.rules import TransferStatus
from beanpay.errors import Conflict
from beanpay.events import catalog
from beanpay.events.outbox import Event, emit_many
from beanpay.events.payloads import TransferPayload

SQL = queries.load("beanpay.engine", "transfers.sql")
BITCOIN = "btc"
CLAIM_PURPOSE = "refund-claim"


class TransferRow(msgspec.Struct):
    id: uuid.UUID
    kind: str  # refund | payout
    payment_id: uuid.UUID | None
    order_id: uuid.UUID | None
    shop_id: uuid.UUID
    wallet_id: uuid.UUID | None
    chain: str
    asset: str
    decimals: int
    token_address: str | None
    variant: str | None
    fiat_amount: Decimal | None
    fiat_currency: str | None
    rate: Decimal | None
    fee_bps: int
    amount: int | None
    status: str
    method: str | None
    destination: str | None
    claim_expires_at: dt.datetime | None
    batch_id: uuid.UUID | None
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
    custodial: bool | None = None  # the platform's money (None: made before custody was recorded)
    node_id: uuid.UUID | None = None  # a refund of money a shop's own Lightning node received: that node
    node_pubkey: str | None = None  # ... with the identity it had then (only it may pay the refund back)

    @property
    def platform_money(self) -> bool:
        """Whether the platform holds the money this transfer sends (its wallet or node pays it)."""
        return self.wallet_id is None if self.custodial is None else self.custodial


class NotCovered(Conflict):
    """The shop's custodial balance does not cover what would be approved (nothing was written)."""


def claim_token(refund_id: uuid.UUID, secret: str) -> str:
    """The customer's refund link: unguessable, nothing stored (a MAC of the refund's id)."""
    return capability.token(CLAIM_PURPOSE, refund_id, secret)


def claimed_refund(token: str, secret: str) -> uuid.UUID | None:
    return capability.subject(CLAIM_PURPOSE, token, secret)


def payload(r: TransferRow) -> TransferPayload:
    """The event of a move. Never the claim token: events are stored, relayed and read by everyone who
    watches the shop; the token is made from the refund's id where it may go (claim_token)."""
    return TransferPayload(r.id, r.kind, r.shop_id, r.order_id, r.payment_id, r.chain, r.asset, r.decimals, r.variant,
                           None if r.amount is None else str(r.amount), r.status, r.destination, r.txid, None,
                           r.failure)


S = TransferStatus
_EVENTS: dict[str, dict[str, catalog.EventType[TransferPayload]]] = {
    "refund": {S.AWAITING_CLAIM: catalog.REFUND_CREATED, S.AWAITING_APPROVAL: catalog.REFUND_CLAIMED,
               S.AWAITING_SIGNATURE: catalog.REFUND_APPROVED, S.SENDING: catalog.REFUND_APPROVED,
               S.IN_FLIGHT: catalog.REFUND_IN_FLIGHT, S.COMPLETED: catalog.REFUND_COMPLETED,
               S.CANCELLED: catalog.REFUND_CANCELLED, S.FAILED: catalog.REFUND_FAILED,
               "reverted": catalog.REFUND_REVERTED},
    "payout": {S.AWAITING_APPROVAL: catalog.PAYOUT_REQUESTED, S.AWAITING_SIGNATURE: catalog.PAYOUT_APPROVED,
               S.SENDING: catalog.PAYOUT_APPROVED, S.IN_FLIGHT: catalog.PAYOUT_IN_FLIGHT,
               S.COMPLETED: catalog.PAYOUT_COMPLETED, S.CANCELLED: catalog.PAYOUT_CANCELLED,
               S.FAILED: catalog.PAYOUT_FAILED, "reverted": catalog.PAYOUT_REVERTED},
}


async def record(conn: Connection, secret: str, before: TransferRow | None, after: TransferRow, actor: audit.Actor,
                 *, reverted: bool = False) -> None:
    """The audit row and event of a move (a completed transfer a reorg took back is `*.reverted`)."""
    await audit.record(conn, actor, f"{after.kind}.{after.status}", after.kind, after.id,
                       before=None if before is None else {"status": before.status},
                       after={"status": after.status, "amount": None if after.amount is None else str(after.amount)})
    kind = _EVENTS[after.kind]["reverted" if reverted else after.status]
    key = after.order_id if after.kind == "refund" else after.shop_id
    events: list[Event[Any]] = [Event(kind, key, payload(after))]
    if after.kind == "refund" and after.status == S.COMPLETED and not reverted:
        events.append(Event(catalog.PAYMENT_REFUNDED, key, payload(after)))
    await emit_many(conn, events)


async def lock(conn: Connection, transfer_id: uuid.UUID) -> TransferRow:
    return await fetch_one(conn, SQL.lock, TransferRow, transfer_id, what="transfer")


async def get(conn: Connection, transfer_id: uuid.UUID) -> TransferRow:
    return await fetch_one(conn, SQL.get, TransferRow, transfer_id, what="transfer")


async def _post(conn: Connection, entry: str, t: TransferRow, amount: int, memo: str) -> None:
    await ledger.post_transfer(conn, t.kind, entry, shop_id=t.shop_id, chain=t.chain, asset=t.asset, amount=amount,
                               payment_id=t.payment_id, transfer_id=t.id, memo=memo, custodial=t.platform_money)


async def approve(conn: Connection, before: TransferRow, *, amount: int, rate: Decimal | None, method: str,
                  status: TransferStatus, secret: str, actor: audit.Actor, fee_room: int = 0) -> TransferRow:
    """Approve at `amount` (the caller checked it against what may go out), to be sent by `method`: the
    shop's balance is debited now, once; the platform's money only as far as the shop's custodial balance
    covers it (decided under the shop's custody lock, held to commit)."""
    rules.transition(before.status, status, before.kind)
    if before.platform_money:
        try:
            await ledger.reserve(conn, before.shop_id, before.chain, before.asset, amount + fee_room)
        except ledger.Overdraft as e:
            raise NotCovered(f"{e}: the platform does not pay a shop's {before.kind}s with other shops' money",
                             balance=str(e.balance)) from None
    after = await fetchrow_as(conn, SQL.approve, TransferRow, before.id, status.value, amount, rate, method,
                              rules.sources(status), audit.user_id(actor))
    if after is None:
        raise IllegalTransition(before.kind, before.status, status)
    await _post(conn, "", after, amount, f"{after.kind} {after.id} approved")
    await record(conn, secret, before, after, actor)
    return after


async def move(conn: Connection, before: TransferRow, target: TransferStatus, *, secret: str, actor: audit.Actor,
               failure: str | None = None, reverted: bool = False) -> TransferRow:
    """One guarded move with its audit row and event; ledger entries go with completing and cancelling."""
    rules.transition(before.status, target, before.kind)
    after = await fetchrow_as(conn, SQL.move, TransferRow, before.id, target.value, rules.sources(target), failure)
    if after is None:
        raise IllegalTransition(before.kind, before.status, target)
    if target is S.COMPLETED and await conn.fetchval(SQL.mark_settled, after.id):
        assert after.amount is not None
        await _post(conn, "sent", after, after.amount, f"{after.kind} {after.id} sent in {after.txid}")
        if after.network_fee:  # a PSBT the shop's own (or the platform's) wallet paid the fee of
            await _post(conn, "fee", after, after.network_fee, f"network fee of {after.kind} {after.id}")
    if target is S.CANCELLED and before.approved_at is not None and after.amount is not None:
        await _post(conn, "cancelled", after, after.amount, f"{after.kind} {after.id} cancelled")
    await record(conn, secret, before, after, actor, reverted=reverted)
    return after


async def sent(conn: Connection, before: TransferRow, txid: str, *, secret: str, actor: audit.Actor) -> TransferRow:
    rules.transition(before.status, S.IN_FLIGHT, before.kind)
    after = await fetchrow_as(conn, SQL.sent, TransferRow, before.id, txid, rules.sources(S.IN_FLIGHT))
    if after is None:
        raise IllegalTransition(before.kind, before.status, S.IN_FLIGHT)
    await record(conn, secret, before, after, actor)
    return after


NEWEST = (dt.datetime.max.replace(tzinfo=dt.UTC), uuid.UUID(int=2**128 - 1))  # a keyset cursor before everything


async def of_shop(conn: Connection, shop_id: uuid.UUID, kind: str, limit: int,
                  before: tuple[dt.datetime | None, uuid.UUID | None] = (None, None)) -> list[TransferRow]:
    """A shop's refunds or payouts, newest first, before a (created_at, id) keyset cursor."""
    return await fetch_as(conn, SQL.of_shop, TransferRow, shop_id, before[0] or NEWEST[0], before[1] or NEWEST[1],
                          limit, kind)


async def awaiting_approval(conn: Connection, limit: int) -> list[TransferRow]:
    """Payouts waiting for an operator, oldest first."""
    return await fetch_as(conn, SQL.awaiting_approval, TransferRow, limit)


class Owner(msgspec.Struct):
    shop_id: uuid.UUID
    kind: str


async def owner(conn: Connection, transfer_id: uuid.UUID) -> Owner | None:
    """The shop a transfer belongs to, and its kind (access is checked before anything is locked)."""
    return await fetchrow_as(conn, SQL.shop_of_transfer, Owner, transfer_id)


async def shop_of_order(conn: Connection, order_id: uuid.UUID) -> uuid.UUID | None:
    found: uuid.UUID | None = await conn.fetchval(SQL.shop_of_order, order_id)
    return found


class PaymentAsset(msgspec.Struct):
    chain: str
    crypto_currency: str
    fiat_currency: str


async def payment_asset(conn: Connection, order_id: uuid.UUID) -> PaymentAsset | None:
    """An order's payment asset and fiat currency (for a rate)."""
    return await fetchrow_as(conn, SQL.payment_asset, PaymentAsset, order_id)
