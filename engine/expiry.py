"""Closing what ran out of time: unpaid orders at the end of their payment window, claims nobody
processed. Rows are taken with FOR UPDATE SKIP LOCKED, so whichever engine process runs the job,
each order expires exactly once and two engines never wait on each other. A batch is three
statements whatever its size."""

from __future__ import annotations

import datetime as dt
from typing import Any

from beanpay import audit, queries
from beanpay.db import Database, fetch_as
from beanpay.engine import inventory
from beanpay.engine.lifecycle import OrderStatus, order_sources
from beanpay.engine.rows import ClaimRow, OrderRow, PaymentRow
from beanpay.engine.settlement import Settling
from beanpay.events import catalog
from beanpay.events.outbox import Event, emit_many

SQL = queries.load("beanpay.engine", "expiry.sql")

GRACE = dt.timedelta(seconds=10)  # lets a deposit first seen at the window's end reach the engine before expiry


async def expire_orders(db: Database, batch: int) -> tuple[int, list[inventory.StockMove]]:
    """Expire up to `batch` unpaid orders; returns how many, and the stock they gave back."""
    async with db.transaction() as conn:
        due = await fetch_as(conn, SQL.due_payments, Settling, batch, GRACE)
        if not due:
            return 0, []
        payments = await fetch_as(conn, SQL.expire_payments, PaymentRow, [p.id for p in due])
        orders = {o.id: o for o in await fetch_as(conn, SQL.expire_orders, OrderRow, [p.order_id for p in due],
                                                  order_sources(OrderStatus.EXPIRED))}
        was = {p.order_id: p.order_status for p in due}
        closed = [o.id for o in orders.values()
                  if o.order_status == OrderStatus.EXPIRED and was[o.id] != OrderStatus.EXPIRED]
        stock = await inventory.release(conn, closed)
        events: list[Event[Any]] = []
        for p in payments:
            order = orders[p.order_id]
            events.append(Event(catalog.PAYMENT_EXPIRED, order.id, p.event(order.shop_id)))
            if order.id in closed:
                events.append(Event(catalog.ORDER_EXPIRED, order.id, order.event()))
        await audit.record_many(conn, audit.SYSTEM, [
            audit.Entry("order.expire", "order", o.id, before={"order_status": was[o.id]},
                        after={"order_status": o.order_status}) for o in orders.values()])
        await emit_many(conn, events)
        return len(due), stock


async def expire_claims(db: Database, batch: int) -> int:
    async with db.transaction() as conn:
        rows = await fetch_as(conn, SQL.expire_claims, ClaimRow, batch)
        await emit_many(conn, [Event(catalog.CLAIM_EXPIRED, r.order_id, r.event()) for r in rows])
        await audit.record_many(conn, audit.SYSTEM, [audit.Entry("claim.expire", "claim", r.id) for r in rows])
        return len(rows)
