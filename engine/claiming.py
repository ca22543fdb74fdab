"""Claims: a paid order's pickup (or delivery hand-over) ticket, and its processing by the shop.

One live claim per order is enforced twice: the order row is locked while claiming, and a partial
unique index (order_claims_live_order_uq) backs it up. An expired claim frees the order again.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg

from beanpay import audit
from beanpay.db import Connection
from beanpay.engine.claims import new_claim_code
from beanpay.engine.lifecycle import OrderStatus, order_transition
from beanpay.engine.orders import ORDER_COLUMNS, order_payload
from beanpay.errors import Conflict, Forbidden, NotFound
from beanpay.events.outbox import Event, emit_many

CLAIMABLE = frozenset({OrderStatus.CONFIRMED, OrderStatus.PREPARING, OrderStatus.READY})
CLAIM_COLUMNS = "id, order_id, user_id, shop_id, claim_code, status, claimed_at, expires_at, processed_at, pickup_time"


def claim_payload(claim: Any) -> dict[str, Any]:
    return {"claim_id": str(claim["id"]), "order_id": str(claim["order_id"]), "shop_id": str(claim["shop_id"]),
            "user_id": str(claim["user_id"]), "status": claim["status"]}


async def claim(conn: Connection, order: Any, *, ttl: dt.timedelta, actor: audit.Actor) -> Any:
    """Issue the order's claim. The caller holds the order row lock (engine.orders.lock_order)."""
    if OrderStatus(order["order_status"]) not in CLAIMABLE:
        raise Conflict(f"the order is {order['order_status']}; only a paid order can be claimed",
                       current_status=order["order_status"])
    live = await conn.fetchrow(
        "SELECT status FROM order_claims WHERE order_id = $1 AND status IN ('active', 'processed')", order["id"])
    if live is not None:
        raise Conflict(f"the order is already claimed (claim {live['status']})", claim_status=live["status"])
    for _ in range(5):  # a code collision (2^-40 per live code) is retried with a new code
        try:
            async with conn.transaction():
                row = await conn.fetchrow(
                    f"""INSERT INTO order_claims (order_id, user_id, shop_id, claim_code, status, expires_at,
                                                  pickup_time)
                        VALUES ($1, $2, $3, $4, 'active', now() + $5::interval, $6) RETURNING {CLAIM_COLUMNS}""",
                    order["id"], order["user_id"], order["shop_id"], new_claim_code(), ttl, order["pickup_time"])
            break
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name != "order_claims_code_uq":
                raise
    else:
        raise Conflict("could not allocate a claim code; retry")
    await audit.record(conn, actor, "order.claim", "claim", row["id"], after=claim_payload(row))
    await emit_many(conn, [Event("order.claimed", "order", order["id"], claim_payload(row))])
    return row


async def process(conn: Connection, code: str, *, may_manage: Any, actor: audit.Actor) -> tuple[Any, Any]:
    """Staff hand the order over: the claim is processed and the order completed."""
    row = await conn.fetchrow(f"SELECT {CLAIM_COLUMNS} FROM order_claims WHERE claim_code = $1 FOR UPDATE", code)
    if row is None:
        raise NotFound("no such claim code")
    if not may_manage(row["shop_id"]):
        raise Forbidden("this claim belongs to another shop")
    if row["status"] != "active":
        raise Conflict(f"the claim is {row['status']}", claim_status=row["status"])
    if row["expires_at"] is not None and row["expires_at"] <= dt.datetime.now(dt.UTC):
        raise Conflict("the claim has expired; the customer can claim again", claim_status="expired")
    order = await conn.fetchrow(f"SELECT {ORDER_COLUMNS} FROM coffee_orders WHERE id = $1 FOR UPDATE",
                                row["order_id"])
    current = OrderStatus(order["order_status"])
    order_transition(current, OrderStatus.COMPLETED)
    claim_after = await conn.fetchrow(
        f"UPDATE order_claims SET status = 'processed', processed_at = now() WHERE id = $1 RETURNING {CLAIM_COLUMNS}",
        row["id"])
    order_after = await conn.fetchrow(
        f"""UPDATE coffee_orders SET order_status = 'completed', version = version + 1, updated_at = now()
            WHERE id = $1 RETURNING {ORDER_COLUMNS}""", order["id"])
    await audit.record(conn, actor, "claim.process", "claim", row["id"], before=claim_payload(row),
                       after=claim_payload(claim_after))
    events = [Event("claim.processed", "order", order["id"], claim_payload(claim_after)),
              Event("order.completed", "order", order["id"], order_payload(order_after))]
    if order["order_type"] == "pickup":
        events.append(Event("order.picked_up", "order", order["id"], order_payload(order_after)))
    await emit_many(conn, events)
    return claim_after, order_after


