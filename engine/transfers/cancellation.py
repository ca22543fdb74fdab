"""Cancelling a paid order the shop has not started on: the order closes, its stock goes back on the
shelf, the payment is marked refunded (its credit stays: the refund's own entries debit it) and a refund
of everything it received is issued for the customer to claim. One transaction."""

from __future__ import annotations

import datetime as dt

from beanpay import audit, queries
from beanpay.db import Connection
from beanpay.engine import inventory, orders
from beanpay.engine.lifecycle import OrderStatus
from beanpay.engine.payments import PAID
from beanpay.engine.rows import OrderRow
from beanpay.engine.transfers import refunds
from beanpay.engine.transfers.service import TransferRow

SETTLEMENT = queries.load("beanpay.engine", "settlement.sql")


async def cancel_paid(conn: Connection, order: OrderRow, *, claim_ttl: dt.timedelta, secret: str,
                      actor: audit.Actor) -> tuple[OrderRow, TransferRow]:
    """The order row is locked by the caller; refused (409 naming the state) once preparation started."""
    after = await orders.move(conn, order, OrderStatus.CANCELLED, actor, payment_in=sorted(PAID))
    await inventory.uncommit(conn, [order.id])
    await inventory.release(conn, [order.id])
    payment = await conn.fetchrow(SETTLEMENT.lock_payment_of_order, order.id)
    assert payment is not None
    if payment["resolution"] is None:
        await conn.execute(SETTLEMENT.mark_resolved, payment["id"], "refunded")
    refund = await refunds.issue(conn, order_id=order.id, variant="crypto_paid", amount=None, fiat_amount=None,
                                 fee_bps=0, reason="the shop cancelled the paid order", rate=None,
                                 claim_ttl=claim_ttl, secret=secret, actor=actor)
    return after, refund
