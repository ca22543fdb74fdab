"""Settling a payment from the deposits at its address: the engine's core transition.

Called with the address's queue row claimed. It locks the payment and its order, re-assesses from
every deposit at the address (not from the event that woke it), and writes what changed: payment
status, order status, stock, ledger, audit and events, in the caller's transaction. Re-running it
with nothing new changes nothing, so a redelivered or duplicated wake-up is harmless, and two engines
serialize on the row locks.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from beanpay import audit
from beanpay.db import Connection
from beanpay.errors import Conflict
from beanpay.events.outbox import Event, emit_many
from engine import inventory, ledger
from engine.lifecycle import OrderStatus, order_transition
from engine.orders import ORDER_COLUMNS, order_payload, payment_payload
from engine.payments import PAID, Deposit, PaymentStatus, assess


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


async def settle(conn: Connection, chain: str, address: str, *, now: dt.datetime, tolerance_bps: int,
                 actor: audit.Actor = audit.SYSTEM) -> Settled | None:
    """Re-assess the payment at (chain, address); None if it is not an order's or nothing changed.

    Written for few round trips (it runs for every deposit change): payment and order locked by one
    statement, each table written once."""
    payment = await conn.fetchrow(
        """SELECT p.*, o.order_status, o.shop_id FROM crypto_payments p JOIN coffee_orders o ON o.id = p.order_id
           WHERE p.chain = $1 AND p.wallet_address = $2 FOR UPDATE OF p, o""", chain, address)
    if payment is None:
        return None  # an address watched for something else (or not yet committed)
    rows = await conn.fetch(
        """SELECT txid, amount, status, first_seen_at, confirmations, block_height FROM deposits
           WHERE chain = $1 AND address = $2 AND asset = $3 ORDER BY first_seen_at, txid""",
        chain, address, payment["crypto_currency"])
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
    after = await conn.fetchrow(
        """UPDATE crypto_payments SET status = $2, amount_received = $3, confirmations = $4, transaction_hash = $5,
                  block_number = $6, confirmed_at = CASE WHEN $7 THEN coalesce(confirmed_at, now()) END,
                  credited = $8, updated_at = now()
           WHERE id = $1 RETURNING *""",
        payment["id"], status.value, received, confirmations, latest["txid"] if latest else None,
        latest["block_height"] if latest else None, status in PAID, credit)
    target = _order_target(status, current, payment["resolution"])
    events: list[Event] = []
    if changed:
        order = await conn.fetchrow(
            f"""UPDATE coffee_orders SET payment_status = $2, order_status = $3::text,
                       version = version + CASE WHEN $3::text <> order_status THEN 1 ELSE 0 END, updated_at = now()
                WHERE id = $1 RETURNING {ORDER_COLUMNS}""",
            payment["order_id"], status.value, (target or current).value)
        name = "reverted" if status is PaymentStatus.PENDING else status.value
        events.append(Event(f"payment.{name}", "order", order["id"], payment_payload(after, order["shop_id"])))
        if target is not None:
            if target is OrderStatus.CONFIRMED:
                await inventory.commit(conn, order["id"])
            else:
                await inventory.uncommit(conn, order["id"])
            name = "confirmed" if target is OrderStatus.CONFIRMED else "updated"
            events.append(Event(f"order.{name}", "order", order["id"], order_payload(order)))
        await audit.record(conn, actor, "payment.settle", "order", order["id"],
                           before={"payment_status": payment["status"], "order_status": current.value},
                           after={"payment_status": status.value, "order_status": order["order_status"],
                                  "amount_received": str(received)})
    delta = credit - int(payment["credited"])
    if delta:
        await ledger.post(conn, shop_id=payment["shop_id"], chain=chain, asset=payment["crypto_currency"],
                          amount=delta, payment_id=payment["id"],
                          memo=f"order {payment['order_id']} payment {status.value}")
    await emit_many(conn, events)
    return Settled(status.value if changed else None, payment["shop_id"])


async def _credit(conn: Connection, order: Any, payment: Any, confirmed_sum: int) -> None:
    """Bring the shop's ledger credit for this payment to what it should be (a no-op when it already is)."""
    target = _credit_target(payment["status"], payment["resolution"], confirmed_sum)
    delta = target - int(payment["credited"])
    if delta == 0:
        return
    await ledger.post(conn, shop_id=order["shop_id"], chain=payment["chain"], asset=payment["crypto_currency"],
                      amount=delta, payment_id=payment["id"],
                      memo=f"order {order['id']} payment {payment['status']}")
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
    if status is PaymentStatus.LATE or status is PaymentStatus.UNDERPAID:
        if any(r["status"] != "confirmed" for r in await conn.fetch(
                "SELECT status FROM deposits WHERE chain = $1 AND address = $2 AND asset = $3 AND status <> 'orphaned'",
                payment["chain"], payment["wallet_address"], payment["crypto_currency"])):
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
    confirmed_sum = sum(int(r["amount"]) for r in await conn.fetch(
        "SELECT amount FROM deposits WHERE chain = $1 AND address = $2 AND asset = $3 AND status = 'confirmed'",
        payment["chain"], payment["wallet_address"], payment["crypto_currency"]))
    await _credit(conn, order, after, confirmed_sum)
    await emit_many(conn, events)
    return after
