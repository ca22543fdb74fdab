"""Settling a payment from the deposits at its address: the engine's core transition.

Called with the addresses' queue rows claimed. It locks each payment and its order, re-assesses from
every deposit at the address (not from the event that woke it), and writes what changed: payment
status, order status, stock, ledger, audit and events, in the caller's transaction. Re-running it
with nothing new changes nothing, so a redelivered or duplicated wake-up is harmless, and two engines
serialize on the row locks. Each move is checked against the payment and order state machines and
written guarded by the state it was decided from.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

import msgspec

from beanpay import audit, queries, tracing
from beanpay.db import Connection, fetch_as, fetchrow_as
from beanpay.engine import inventory, ledger
from beanpay.engine.lifecycle import OrderStatus, order_transition, payment_transition
from beanpay.engine.orders import move
from beanpay.engine.payments import LIVE, PAID, Deposit, PaymentStatus, assess
from beanpay.engine.rows import DepositRow, OrderRow, PaymentRow
from beanpay.errors import Conflict
from beanpay.events import catalog
from beanpay.events.outbox import Event, emit_many

SQL = queries.load("beanpay.engine", "settlement.sql")


class Settling(PaymentRow):
    """A payment with its order's status and shop, as lock_payments reads it, and its invoice's own
    underpayment tolerance and confirmation speed (None: the deployment's)."""

    order_status: str
    shop_id: uuid.UUID
    tolerance_bps: int | None = None
    speed: str | None = None
    trace_parent: str | None = None  # the order's trace, which its settlement continues
    wallet_id: uuid.UUID | None = None  # the shop's own wallet its address is in (None: the platform's)
    credited_custodial: int = 0  # of `credited`, what the platform holds (read after the lock)


def counted(status: str, speed: str | None) -> str:
    """A deposit's status as this payment counts it: at speed `medium` one confirmation is enough."""
    return "confirmed" if speed == "medium" and status == "confirming" else status


@dataclass(frozen=True, slots=True)
class Settled:
    status: str | None  # the payment's new status, if it changed
    shop_id: uuid.UUID


@dataclass
class Settlement:
    """What a batch changed: payments, and the supply rows whose stock moved."""

    changed: list[Settled] = field(default_factory=list)
    stock: list[inventory.StockMove] = field(default_factory=list)
    unmatched: list[tuple[str, str]] = field(default_factory=list)  # addresses no payment is at (refunds', change)


CLOSED_ORDERS = frozenset({OrderStatus.CANCELLED, OrderStatus.EXPIRED})


def credit_target(status: str, resolution: str | None, received_confirmed: int) -> int:
    """What the shop should have been credited for this payment so far. A refunded exception is credited
    too: the money did arrive, and its refund's own ledger entries debit the shop as it goes back."""
    if PaymentStatus(status) in PAID or resolution in ("accepted", "refunded"):
        return received_confirmed
    return 0


class Received(msgspec.Struct, frozen=True):
    """Money counted for a payment: how much, and whether the platform holds it."""

    amount: int
    custodial: bool


def held_by_platform(held: bool | None, wallet_id: uuid.UUID | None) -> bool:
    """Who holds a deposit: a Lightning invoice's node says (the platform's node, or the shop's own); on
    chain, the wallet the payment's address belongs to."""
    return wallet_id is None if held is None else held


def credits_due(shop_id: uuid.UUID, payment: PaymentRow, status: str, confirmed: list[Received],
                credited_custodial: int, memo: str) -> tuple[int, list[ledger.Credit]]:
    """The shop's credit for a payment (its new total) and the ledger credits that bring each custody to
    what it should be: custody follows the money, so a payment partly in the platform's wallet and partly
    in the shop's own node is credited to each for its own part. Pure."""
    platform = credit_target(status, payment.resolution, sum(r.amount for r in confirmed if r.custodial))
    total = credit_target(status, payment.resolution, sum(r.amount for r in confirmed))
    moves = ((True, platform - credited_custodial),
             (False, (total - platform) - (payment.credited - credited_custodial)))
    return total, [ledger.Credit(shop_id, payment.chain, payment.crypto_currency, delta, payment.id, memo, custodial)
                   for custodial, delta in moves if delta]


def order_target(status: PaymentStatus, current: OrderStatus, resolution: str | None) -> OrderStatus | None:
    """The order moves with its payment: paid confirms it; a reorg that takes the payment back before
    the shop started on it returns it to pending. Otherwise it stays."""
    if status in PAID and current is OrderStatus.PENDING:
        return order_transition(current, OrderStatus.CONFIRMED)
    if status not in PAID and current is OrderStatus.CONFIRMED and resolution != "accepted":
        return order_transition(current, OrderStatus.PENDING)
    return None


@dataclass
class Writes:
    """What one batch changes, written with one statement per table."""

    payments: list[tuple[Any, ...]] = field(default_factory=list)
    orders: list[tuple[Any, ...]] = field(default_factory=list)
    commit: list[uuid.UUID] = field(default_factory=list)
    uncommit: list[uuid.UUID] = field(default_factory=list)
    credits: list[ledger.Credit] = field(default_factory=list)


async def settle_many(conn: Connection, keys: list[tuple[str, str]], *, now: dt.datetime, tolerance_bps: int,
                      actor: audit.Actor = audit.SYSTEM) -> Settlement:
    """Re-assess the payments at these (chain, address) pairs, in the caller's transaction.

    One statement locks every payment and order, one reads their deposits, and each table is then
    written once for the whole batch: the engine runs this for every deposit change, and round trips
    are its cost. Returns what changed (payments whose status or amounts moved, and stock)."""
    chains, addresses = [k[0] for k in keys], [k[1] for k in keys]
    payments = await fetch_as(conn, SQL.lock_payments, Settling, chains, addresses)
    matched = {(p.chain, p.wallet_address) for p in payments}
    unmatched = [k for k in keys if k not in matched]
    if not payments:
        return Settlement(unmatched=unmatched)  # addresses watched for something else (or not yet committed)
    credited = [p.id for p in payments if p.credited]  # a payment not yet credited holds nothing of either
    if credited:
        split = {r["payment_id"]: r["credited"] for r in await conn.fetch(SQL.credited_custodial, credited)}
        for p in payments:
            p.credited_custodial = int(split.get(p.id, 0))
    found: dict[tuple[str, str, str], list[DepositRow]] = {}
    for d in await fetch_as(conn, SQL.deposits_at, DepositRow, [p.chain for p in payments],
                            [p.wallet_address for p in payments]):
        found.setdefault((d.chain, d.address, d.asset), []).append(d)
    writes, settled, moved = Writes(), [], []
    for payment in payments:
        outcome = assess_payment(payment, found.get((payment.chain, payment.wallet_address, payment.crypto_currency),
                                                    []), now, tolerance_bps, writes)
        if outcome is not None:
            settled.append(Settled(outcome or None, payment.shop_id))
            moved.append(payment)
    if not writes.payments:
        return Settlement(settled, unmatched=unmatched)
    after = {p.id: p for p in await fetch_as(conn, SQL.settle_payments, PaymentRow,
                                             *map(list, zip(*writes.payments, strict=True)))}
    if len(after) != len(writes.payments):
        raise Conflict("a payment moved while it was being settled")  # rows are locked: a bug, never a guess
    orders: dict[uuid.UUID, OrderRow] = {}
    if writes.orders:
        orders = {o.id: o for o in await fetch_as(conn, SQL.settle_orders, OrderRow,
                                                  *map(list, zip(*writes.orders, strict=True)))}
        if len(orders) != len(writes.orders):
            raise Conflict("an order moved while its payment was being settled")
    stock = []
    if writes.commit:
        stock += await inventory.commit(conn, writes.commit)
    if writes.uncommit:
        stock += await inventory.uncommit(conn, writes.uncommit)
    await ledger.post_many(conn, writes.credits)
    events: list[Event[Any]] = []
    entries: list[audit.Entry] = []
    for payment in moved:
        order = orders.get(payment.order_id)
        if order is None:
            continue  # amounts or confirmations moved, the status did not: nothing to announce
        paid = after[payment.id]
        trace = tracing.child_of(payment.trace_parent, "settle payment", attributes={
            "beanpay.order_id": str(order.id), "beanpay.payment_status": paid.status,
            "beanpay.order_status": order.order_status}) if tracing.enabled else None
        events.append(Event(catalog.PAYMENT_STATUS_EVENTS[paid.status], order.id, paid.event(order.shop_id), trace))
        if order.order_status != payment.order_status:
            kind = catalog.ORDER_CONFIRMED if order.order_status == OrderStatus.CONFIRMED else catalog.ORDER_UPDATED
            events.append(Event(kind, order.id, order.event(), trace))
        entries.append(audit.Entry(
            "payment.settle", "order", order.id,
            before={"payment_status": payment.status, "order_status": payment.order_status},
            after={"payment_status": paid.status, "order_status": order.order_status,
                   "amount_received": str(paid.amount_received)}))
    await audit.record_many(conn, actor, entries)
    await emit_many(conn, events)
    return Settlement(settled, stock, unmatched)


def assess_payment(payment: Settling, rows: list[DepositRow], now: dt.datetime, tolerance_bps: int,
                   writes: Writes) -> str | None:
    """Decide one payment's new state from its deposits and queue its writes. Returns its new status
    if that changed, "" if only amounts or confirmations moved, None if nothing did. Pure but for `writes`."""
    live = [r for r in rows if r.status in LIVE]
    tolerance = tolerance_bps if payment.tolerance_bps is None else payment.tolerance_bps
    status = assess(payment.crypto_amount,
                    [Deposit(r.amount, counted(r.status, payment.speed), r.first_seen_at) for r in rows],
                    expires_at=payment.expires_at, now=now, underpay_tolerance_bps=tolerance)
    current = OrderStatus(payment.order_status)
    if current in CLOSED_ORDERS:
        # money for an order that is already closed is late (the merchant decides); with none live
        # (a late deposit orphaned, even before the window's end) its payment is closed too: expired
        status = PaymentStatus.LATE if live else PaymentStatus.EXPIRED
    elif not live and payment.status == PaymentStatus.EXPIRED:
        status = PaymentStatus.EXPIRED
    received = sum(r.amount for r in live)
    confirmed = [Received(r.amount, held_by_platform(r.held_by_platform, payment.wallet_id))
                 for r in live if counted(r.status, payment.speed) == "confirmed"]
    confirmations = min((r.confirmations for r in live), default=0)
    latest = max(live, key=lambda r: (r.block_height or 0), default=None)
    changed = status.value != payment.status
    if not changed and received == payment.amount_received and confirmations == payment.confirmations:
        return None
    if changed:
        payment_transition(payment.status, status)  # a move the state machine does not have is refused
    credit, credits = credits_due(payment.shop_id, payment, status.value, confirmed, payment.credited_custodial,
                                  f"order {payment.order_id} payment {status.value}")
    writes.payments.append((payment.id, payment.status, status.value, received, confirmations,
                            latest.txid if latest else None, latest.block_height if latest else None,
                            status in PAID, credit))
    writes.credits += credits
    if not changed:
        return ""
    target = order_target(status, current, payment.resolution)
    writes.orders.append((payment.order_id, current.value, status.value, (target or current).value))
    if target is OrderStatus.CONFIRMED:
        writes.commit.append(payment.order_id)
    elif target is OrderStatus.PENDING:
        writes.uncommit.append(payment.order_id)
    return status.value


class _CreditCustody(msgspec.Struct):
    wallet_id: uuid.UUID | None
    credited_custodial: int


async def _credit(conn: Connection, shop_id: uuid.UUID, payment: PaymentRow, live: list[Any]) -> None:
    """Bring the shop's ledger credit for this payment to what it should be (a no-op when it already is)."""
    custody = await fetchrow_as(conn, SQL.credit_custody, _CreditCustody, payment.id, str(shop_id))
    assert custody is not None
    confirmed = [Received(int(r["amount"]), held_by_platform(r["held_by_platform"], custody.wallet_id))
                 for r in live if r["status"] == "confirmed"]
    target, credits = credits_due(shop_id, payment, payment.status, confirmed, custody.credited_custodial,
                                  f"order {payment.order_id} payment {payment.status}")
    if not credits:
        return
    await ledger.post_many(conn, credits)
    await conn.execute(SQL.set_credited, payment.id, target)


RESOLUTIONS = {  # payment status -> what the merchant may do about it
    PaymentStatus.UNDERPAID: ("accept", "refund"),
    PaymentStatus.LATE: ("accept", "refund"),
    PaymentStatus.OVERPAID: ("settle",),
}
RESOLVED = {"accept": "accepted", "refund": "refunded", "settle": "settled"}


async def resolve(conn: Connection, order: OrderRow, action: str, actor: audit.Actor) -> PaymentRow:
    """The merchant's answer to a payment exception. accept: take the money and fulfil the order;
    refund: the money goes back through a refund (engine.transfers.refunds issues it) and the order closes;
    settle: an overpayment's excess was returned. Each exception is resolved once. The caller holds the
    order row lock."""
    payment = await fetchrow_as(conn, SQL.lock_payment_of_order, PaymentRow, order.id)
    if payment is None:
        raise Conflict("the order has no payment")
    status = PaymentStatus(payment.status)
    if payment.resolution is not None:
        raise Conflict(f"this payment was already resolved ({payment.resolution})", resolution=payment.resolution)
    allowed = RESOLUTIONS.get(status, ())
    if action not in allowed:
        raise Conflict(f"the payment is {status.value}; allowed here: {', '.join(allowed) or 'nothing'}",
                       payment_status=status.value)
    live = await conn.fetch(SQL.live_deposits, payment.chain, payment.wallet_address, payment.crypto_currency)
    if status in (PaymentStatus.LATE, PaymentStatus.UNDERPAID) and any(r["status"] != "confirmed" for r in live):
        raise Conflict("wait until every deposit to this order is confirmed")
    current = OrderStatus(order.order_status)
    after = await fetchrow_as(conn, SQL.mark_resolved, PaymentRow, payment.id, RESOLVED[action])
    if after is None:
        raise Conflict("this payment was already resolved")
    await audit.record(conn, actor, f"payment.{action}", "payment", payment.id,
                       before={"status": status.value}, after={"resolution": RESOLVED[action]})
    await emit_many(conn, [Event(catalog.PAYMENT_RESOLVED, order.id, after.event(order.shop_id))])
    if action == "accept":
        if current is OrderStatus.EXPIRED:
            await inventory.take_released(conn, order.id)
        else:
            await inventory.commit(conn, [order.id])
        await move(conn, order, OrderStatus.CONFIRMED, actor)
    elif action == "refund" and current is OrderStatus.PENDING:
        await inventory.release(conn, [order.id])
        await move(conn, order, OrderStatus.CANCELLED, actor)
    await _credit(conn, order.shop_id, after, list(live))
    return after
