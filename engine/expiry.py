"""Closing what ran out of time: unpaid orders at the end of their payment window, claims nobody
processed. Rows are taken with FOR UPDATE SKIP LOCKED, so whichever engine process runs the job,
each order expires exactly once and two engines never wait on each other."""

from __future__ import annotations

import uuid

from beanpay import audit
from beanpay.db import Pool, transaction
from beanpay.engine import inventory
from beanpay.engine.lifecycle import OrderStatus, order_transition
from beanpay.engine.orders import ORDER_COLUMNS, order_payload, payment_payload
from beanpay.events.outbox import Event, emit_many

GRACE = "10 seconds"  # lets a deposit first seen at the window's end reach the engine before expiry


async def expire_orders(pool: Pool, batch: int) -> list[uuid.UUID]:
    """Expire up to `batch` orders; returns the shop of each (their stock changed)."""
    async with transaction(pool) as conn:
        # a payment with any live deposit is never expired here: settlement decides it
        payments = await conn.fetch(
            f"""SELECT p.*, o.shop_id FROM crypto_payments p JOIN coffee_orders o ON o.id = p.order_id
                WHERE p.status = 'pending' AND p.expires_at + interval '{GRACE}' <= now()
                  AND NOT EXISTS (SELECT 1 FROM deposits d WHERE d.chain = p.chain AND d.address = p.wallet_address
                                  AND d.status <> 'orphaned')
                ORDER BY p.expires_at LIMIT $1 FOR UPDATE OF p, o SKIP LOCKED""", batch)
        for payment in payments:
            order = await conn.fetchrow(f"SELECT {ORDER_COLUMNS} FROM coffee_orders WHERE id = $1 FOR UPDATE",
                                        payment["order_id"])
            events = []
            after_payment = await conn.fetchrow(
                "UPDATE crypto_payments SET status = 'expired', updated_at = now() WHERE id = $1 RETURNING *",
                payment["id"])
            events.append(Event("payment.expired", "order", order["id"], payment_payload(after_payment,
                                                                                         order["shop_id"])))
            target = order["order_status"]
            if order["order_status"] == OrderStatus.PENDING:
                target = order_transition(order["order_status"], OrderStatus.EXPIRED).value
                await inventory.release(conn, order["id"])
            after = await conn.fetchrow(
                f"""UPDATE coffee_orders SET order_status = $2, payment_status = 'expired', version = version + 1,
                           updated_at = now() WHERE id = $1 RETURNING {ORDER_COLUMNS}""", order["id"], target)
            if target != order["order_status"]:
                events.append(Event("order.expired", "order", order["id"], order_payload(after)))
            await audit.record(conn, audit.SYSTEM, "order.expire", "order", order["id"],
                               before={"order_status": order["order_status"]}, after={"order_status": target})
            await emit_many(conn, events)
        return [p["shop_id"] for p in payments]


async def expire_claims(pool: Pool, batch: int) -> int:
    async with transaction(pool) as conn:
        rows = await conn.fetch(
            """UPDATE order_claims SET status = 'expired'
               WHERE id IN (SELECT id FROM order_claims WHERE status = 'active' AND expires_at <= now()
                            ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)
               RETURNING id, order_id, shop_id, user_id, claim_code""", batch)
        await emit_many(conn, [Event("claim.expired", "order", r["order_id"],
                                     {"claim_id": str(r["id"]), "order_id": str(r["order_id"]),
                                      "shop_id": str(r["shop_id"]), "user_id": str(r["user_id"])}) for r in rows])
        for r in rows:
            await audit.record(conn, audit.SYSTEM, "claim.expire", "claim", r["id"])
        return len(rows)
