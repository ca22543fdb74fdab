"""Settling a payment from the deposits at its address: the engine's core transition.

Called with the addresses' queue rows claimed. It locks each payment and its order, re-assesses from
every deposit at the address (not from the event that woke it), and writes what changed: payment
status, order status, stock, ledger, audit and events, in the caller's transaction. Re-running it
with nothing new changes nothing, so a redelivered or duplicated wake-up is harmless, and two engines
serialize on the row locks.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

from beanpay import audit
from beanpay.db import Connection
from beanpay.engine import inventory, ledger
from beanpay.engine.lifecycle import OrderStatus, order_transition
from beanpay.engine.orders import ORDER_COLUMNS, order_payload, payment_payload
from beanpay.engine.payments import PAID, Deposit, PaymentStatus, assess
from beanpay.errors import Conflict
from beanpay.events.outbox import Event, emit_many
from beanpay.money import base_units


@dataclass(frozen=True, slots=True)
class Settled:
    status: str | None  # the payment's new status, if it changed
    shop_id: uuid.UUID


CLOSED_ORDERS = frozenset({OrderStatus.CANCELLED, OrderStatus.EXPIRED})


def _credit_target(status: str, resolution: str | None, received_confirmed: int) -> int:
    """What the shop should have been credited for this payment so far."""
    if resolution == "refunded":
        return 0
    if PaymentStatus(status) in PAID or resolution == "accepted":
        return received_confirmed
    return 0


def _order_target(status: PaymentStatus, current: OrderStatus, resolution: str | None) -> OrderStatus | None:
    """The order moves with its payment: paid confirms it; a reorg that takes the payment back before
    the shop started on it returns it to pending. Otherwise it stays."""
    if status in PAID and current is OrderStatus.PENDING:
        return order_transition(current, OrderStatus.CONFIRMED)
    if status not in PAID and current is OrderStatus.CONFIRMED and resolution != "accepted":
        return order_transition(current, OrderStatus.PENDING)
    return None


@dataclass
class _Writes:
    """What one batch changes, written with one statement per table."""

    payments: list[tuple[Any, ...]] = field(default_factory=list)
    orders: list[tuple[Any, ...]] = field(default_factory=list)
    commit: list[uuid.UUID] = field(default_factory=list)
    uncommit: list[uuid.UUID] = field(default_factory=list)
    credits: list[ledger.Credit] = field(default_factory=list)


async def settle_many(conn: Connection, keys: list[tuple[str, str]], *, now: dt.datetime, tolerance_bps: int,
                      actor: audit.Actor = audit.SYSTEM) -> list[Settled]:
    """Re-assess the payments at these (chain, address) pairs, in the caller's transaction.

    One statement locks every payment and order (in address order, the same in every engine, so two
    batches never deadlock), one reads their deposits, and each table is then written once for the
    whole batch: the engine runs this for every deposit change, and round trips are its cost.
    Returns what changed (payments whose status or amounts moved)."""
    payments = await conn.fetch(
        """SELECT p.*, o.order_status, o.shop_id FROM crypto_payments p JOIN coffee_orders o ON o.id = p.order_id
           JOIN unnest($1::text[], $2::text[]) AS k(chain, address)
                ON p.chain = k.chain AND p.wallet_address = k.address
           ORDER BY p.chain, p.wallet_address FOR UPDATE OF p, o""",
        [k[0] for k in keys], [k[1] for k in keys])
    if not payments:
        return []  # addresses watched for something else (or not yet committed)
    found: dict[tuple[str, str, str], list[Any]] = {}
    for r in await conn.fetch(
            """SELECT d.chain, d.address, d.asset, d.txid, d.amount, d.status, d.first_seen_at, d.confirmations,
                      d.block_height
               FROM deposits d JOIN unnest($1::text[], $2::text[]) AS k(chain, address)
                    ON d.chain = k.chain AND d.address = k.address
               ORDER BY d.first_seen_at, d.txid""",
            [p["chain"] for p in payments], [p["wallet_address"] for p in payments]):
        found.setdefault((r["chain"], r["address"], r["asset"]), []).append(r)
    writes, settled, pending_events = _Writes(), [], []
    for payment in payments:
        rows = found.get((payment["chain"], payment["wallet_address"], payment["crypto_currency"]), [])
        outcome = _assess(payment, rows, now, tolerance_bps, writes)
        if outcome is not None:
            settled.append(Settled(outcome or None, payment["shop_id"]))
            pending_events.append(payment)
    if not writes.payments:
        return []
    after = {r["id"]: r for r in await conn.fetch(
        """UPDATE crypto_payments p SET status = w.status, amount_received = w.received, confirmations = w.confs,
                  transaction_hash = w.txid, block_number = w.block,
                  confirmed_at = CASE WHEN w.paid THEN coalesce(p.confirmed_at, now()) END,
                  credited = w.credit, updated_at = now()
           FROM unnest($1::uuid[], $2::text[], $3::numeric[], $4::int[], $5::text[], $6::bigint[], $7::bool[],
                       $8::numeric[]) AS w(id, status, received, confs, txid, block, paid, credit)
           WHERE p.id = w.id RETURNING p.*""", *map(list, zip(*writes.payments, strict=True)))}
    orders = {}
    if writes.orders:
        orders = {r["id"]: r for r in await conn.fetch(
            f"""UPDATE coffee_orders o SET payment_status = w.payment_status, order_status = w.order_status,
                       version = o.version + CASE WHEN w.order_status <> o.order_status THEN 1 ELSE 0 END,
                       updated_at = now()
                FROM unnest($1::uuid[], $2::text[], $3::text[]) AS w(id, payment_status, order_status)
                WHERE o.id = w.id RETURNING {", ".join("o." + c.strip() for c in ORDER_COLUMNS.split(","))}""",
            *map(list, zip(*writes.orders, strict=True)))}
    if writes.commit:
        await inventory.commit(conn, writes.commit)
    if writes.uncommit:
        await inventory.uncommit(conn, writes.uncommit)
    await ledger.post_many(conn, writes.credits)
    events: list[Event] = []
    entries: list[audit.Entry] = []
    for payment in pending_events:
        order = orders.get(payment["order_id"])
        if order is None:
            continue  # amounts or confirmations moved, the status did not: nothing to announce
        new = PaymentStatus(order["payment_status"])
        name = "reverted" if new is PaymentStatus.PENDING else new.value
        events.append(Event(f"payment.{name}", "order", order["id"],
                            payment_payload(after[payment["id"]], order["shop_id"])))
        if order["order_status"] != payment["order_status"]:
            moved = "confirmed" if order["order_status"] == OrderStatus.CONFIRMED else "updated"
            events.append(Event(f"order.{moved}", "order", order["id"], order_payload(order)))
        entries.append(audit.Entry(
            "payment.settle", "order", order["id"],
            before={"payment_status": payment["status"], "order_status": payment["order_status"]},
            after={"payment_status": new.value, "order_status": order["order_status"],
                   "amount_received": base_units(after[payment["id"]]["amount_received"])}))
    await audit.record_many(conn, actor, entries)
    await emit_many(conn, events)
    return settled


def _assess(payment: Any, rows: list[Any], now: dt.datetime, tolerance_bps: int, writes: _Writes) -> str | None:
    """Decide one payment's new state from its deposits and queue its writes. Returns its new status
    if that changed, "" if only amounts or confirmations moved, None if nothing did. Pure but for `writes`."""
    deposits = [Deposit(int(r["amount"]), r["status"], r["first_seen_at"]) for r in rows]
    live = [r for r in rows if r["status"] != "orphaned"]
    status = assess(int(payment["crypto_amount"]), deposits, expires_at=payment["expires_at"], now=now,
                    underpay_tolerance_bps=tolerance_bps)
    current = OrderStatus(payment["order_status"])
    if current in CLOSED_ORDERS and status not in (PaymentStatus.PENDING, PaymentStatus.EXPIRED):
        status = PaymentStatus.LATE  # money for an order that is already closed: the merchant decides
    if not live and payment["status"] == "expired":
        status = PaymentStatus.EXPIRED
    received = sum(int(r["amount"]) for r in live)
    confirmed_sum = sum(int(r["amount"]) for r in live if r["status"] == "confirmed")
    confirmations = min((r["confirmations"] for r in live), default=0)
    latest = max(live, key=lambda r: (r["block_height"] or 0), default=None)
    changed = status.value != payment["status"]
    if not changed and received == payment["amount_received"] and confirmations == payment["confirmations"]:
        return None
    credit = _credit_target(status.value, payment["resolution"], confirmed_sum)
    writes.payments.append((payment["id"], status.value, received, confirmations, latest["txid"] if latest else None,
                            latest["block_height"] if latest else None, status in PAID, credit))
    delta = credit - int(payment["credited"])
    if delta:
        writes.credits.append(ledger.Credit(payment["shop_id"], payment["chain"], payment["crypto_currency"], delta,
                                            payment["id"], f"order {payment['order_id']} payment {status.value}"))
    if not changed:
        return ""
    target = _order_target(status, current, payment["resolution"])
    writes.orders.append((payment["order_id"], status.value, (target or current).value))
    if target is OrderStatus.CONFIRMED:
        writes.commit.append(payment["order_id"])
    elif target is OrderStatus.PENDING:
        writes.uncommit.append(payment["order_id"])
    return status.value


async def _credit(conn: Connection, order: Any, payment: Any, confirmed_sum: int) -> None:
    """Bring the shop's ledger credit for this payment to what it should be (a no-op when it already is)."""
    target = _credit_target(payment["status"], payment["resolution"], confirmed_sum)
    delta = target - int(payment["credited"])
    if delta == 0:
        return
    await ledger.post_many(conn, [ledger.Credit(order["shop_id"], payment["chain"], payment["crypto_currency"], delta,
                                                payment["id"], f"order {order['id']} payment {payment['status']}")])
    await conn.execute("UPDATE crypto_payments SET credited = $2 WHERE id = $1", payment["id"], target)


RESOLUTIONS = {  # payment status -> what the merchant may do about it
    PaymentStatus.UNDERPAID: ("accept", "refund"),
    PaymentStatus.LATE: ("accept", "refund"),
    PaymentStatus.OVERPAID: ("settle",),
}


async def resolve(conn: Connection, order: Any, action: str, actor: audit.Actor) -> Any:
    """The merchant's answer to a payment exception. accept: take the money and fulfil the order;
    refund: the money goes back (outside beanpay) and the order closes; settle: an overpayment's
    excess was returned. Each exception is resolved once."""
    payment = await conn.fetchrow("SELECT * FROM crypto_payments WHERE order_id = $1 FOR UPDATE", order["id"])
    status = PaymentStatus(payment["status"])
    if payment["resolution"] is not None:
        raise Conflict(f"this payment was already resolved ({payment['resolution']})",
                       resolution=payment["resolution"])
    allowed = RESOLUTIONS.get(status, ())
    if action not in allowed:
        raise Conflict(f"the payment is {status.value}; allowed here: {', '.join(allowed) or 'nothing'}",
                       payment_status=status.value)
    live = await conn.fetch(
        "SELECT status, amount FROM deposits WHERE chain = $1 AND address = $2 AND asset = $3 AND status <> 'orphaned'",
        payment["chain"], payment["wallet_address"], payment["crypto_currency"])
    if status in (PaymentStatus.LATE, PaymentStatus.UNDERPAID) and any(r["status"] != "confirmed" for r in live):
        raise Conflict("wait until every deposit to this order is confirmed")
    current = OrderStatus(order["order_status"])
    resolution = {"accept": "accepted", "refund": "refunded", "settle": "settled"}[action]
    events: list[Event] = []
    target = None
    if action == "accept":
        target = order_transition(current, OrderStatus.CONFIRMED)
        if current is OrderStatus.EXPIRED:
            await inventory.take_released(conn, order["id"])
        else:
            await inventory.commit(conn, order["id"])
    elif action == "refund" and current is OrderStatus.PENDING:
        target = order_transition(current, OrderStatus.CANCELLED)
        await inventory.release(conn, order["id"])
    after = await conn.fetchrow(
        "UPDATE crypto_payments SET resolution = $2, resolved_at = now(), updated_at = now() WHERE id = $1 RETURNING *",
        payment["id"], resolution)
    await audit.record(conn, actor, f"payment.{action}", "payment", payment["id"],
                       before={"status": status.value}, after={"resolution": resolution})
    events.append(Event("payment.resolved", "order", order["id"], payment_payload(after, order["shop_id"])))
    if target is not None:
        moved = await conn.fetchrow(
            f"""UPDATE coffee_orders SET order_status = $2, version = version + 1, updated_at = now()
                WHERE id = $1 RETURNING {ORDER_COLUMNS}""", order["id"], target.value)
        await audit.record(conn, actor, f"order.{target.value}", "order", order["id"],
                           before={"order_status": current.value}, after={"order_status": target.value})
        events.append(Event(f"order.{target.value}", "order", order["id"], order_payload(moved)))
        order = moved
    await _credit(conn, order, after, sum(int(r["amount"]) for r in live if r["status"] == "confirmed"))
    await emit_many(conn, events)
    return after
