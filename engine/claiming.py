"""Claims: a paid order's pickup (or delivery hand-over) ticket, and its processing by the shop.

One live claim per order is enforced twice: the order row is locked while claiming, and a partial
unique index (order_claims_live_order_uq) backs it up. An expired claim frees the order again.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

import msgspec

from beanpay import audit, queries
from beanpay.db import Connection, fetchrow_as
from beanpay.engine.claim_codes import new_claim_code
from beanpay.engine.lifecycle import OrderStatus
from beanpay.engine.orders import lock_order, move
from beanpay.engine.rows import ClaimRow, OrderRow
from beanpay.errors import Conflict, Forbidden, NotFound
from beanpay.events import catalog
from beanpay.events.outbox import Event, emit_many

SQL = queries.load("beanpay.engine", "claims.sql")

CLAIMABLE = frozenset({OrderStatus.CONFIRMED, OrderStatus.PREPARING, OrderStatus.READY})


async def latest(conn: Connection, order_id: uuid.UUID) -> ClaimRow | None:
    """An order's newest claim, live or not."""
    return await fetchrow_as(conn, SQL.latest_claim, ClaimRow, order_id)


async def claim(conn: Connection, order: OrderRow, *, ttl: dt.timedelta, actor: audit.Actor) -> ClaimRow:
    """Issue the order's claim. The caller holds the order row lock (engine.orders.lock_order)."""
    if order.order_type == "invoice":
        raise Conflict("an invoice's payment has nothing to hand over at a counter")
    if OrderStatus(order.order_status) not in CLAIMABLE:
        raise Conflict(f"the order is {order.order_status}; only a paid order can be claimed",
                       current_status=order.order_status)
    live = await conn.fetchrow(SQL.live_claim, order.id)
    if live is not None:
        raise Conflict(f"the order is already claimed (claim {live['status']})", claim_status=live["status"])
    row: ClaimRow | None = None
    for _ in range(5):  # a code collision (2^-40 per live code) is retried with a new code
        try:
            async with conn.transaction():
                row = await fetchrow_as(conn, SQL.insert_claim, ClaimRow, order.id, order.user_id, order.shop_id,
                                        new_claim_code(), ttl, order.pickup_time)
            break
        except Conflict as exc:
            if exc.detail.get("constraint") != "order_claims_code_uq":
                raise
    if row is None:
        raise Conflict("could not allocate a claim code; retry")
    await audit.record(conn, actor, "order.claim", "claim", row.id, after=row.event())
    await emit_many(conn, [Event(catalog.ORDER_CLAIMED, order.id, row.event())])
    return row


async def process(conn: Connection, code: str, *, may_manage: Callable[[uuid.UUID], bool],
                  actor: audit.Actor) -> tuple[ClaimRow, OrderRow]:
    """Staff hand the order over: the claim is processed and the order completed."""
    row = await fetchrow_as(conn, SQL.lock_claim, ClaimRow, code)
    if row is None:
        raise NotFound("no such claim code")
    if not may_manage(row.shop_id):
        raise Forbidden("this claim belongs to another shop")
    if row.status != "active":
        raise Conflict(f"the claim is {row.status}", claim_status=row.status)
    done = await fetchrow_as(conn, SQL.process_claim, ClaimRow, row.id)
    if done is None:
        raise Conflict("the claim has expired; the customer can claim again", claim_status="expired")
    order = await lock_order(conn, row.order_id)
    await emit_many(conn, [Event(catalog.CLAIM_PROCESSED, order.id, done.event())])
    completed = msgspec.structs.replace(order, order_status=OrderStatus.COMPLETED.value)
    picked_up = [Event(catalog.ORDER_PICKED_UP, order.id, completed.event())] if order.order_type == "pickup" else []
    after = await move(conn, order, OrderStatus.COMPLETED, actor, extra=picked_up)
    await audit.record(conn, actor, "claim.process", "claim", row.id, before=row.event(), after=done.event())
    return done, after
