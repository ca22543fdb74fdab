"""Stock reservations: an unpaid order holds stock, a paid one takes it, an expired or cancelled one
gives it back. All in the caller's transaction, with the supply rows locked by their UPDATE.

Available stock is `quantity - reserved`; a reservation succeeds only while enough is available,
so concurrent orders can never oversell. The low-stock alert fires when available stock goes from
above the reorder level to at or below it, which is when the shop needs to know.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from beanpay.db import Connection
from beanpay.errors import Conflict
from beanpay.events.outbox import emit

_STATUS = """CASE WHEN status = 'discontinued' THEN 'discontinued'
                  WHEN quantity = 0 THEN 'out_of_stock'
                  WHEN quantity <= reorder_level THEN 'low_stock' ELSE 'in_stock' END"""


def _status_for(quantity: str) -> str:
    """The stock status for a new quantity expression, inside an UPDATE of coffee_supplies s."""
    return f"""CASE WHEN s.status = 'discontinued' THEN 'discontinued' WHEN {quantity} = 0 THEN 'out_of_stock'
                    WHEN {quantity} <= s.reorder_level THEN 'low_stock' ELSE 'in_stock' END"""


async def reserve(conn: Connection, order_id: uuid.UUID, shop_id: uuid.UUID,
                  wanted: Mapping[uuid.UUID, int], fields: Mapping[uuid.UUID, str]) -> list[uuid.UUID]:
    """Hold `wanted[product]` units of each stock-tracked product; untracked products need nothing.
    Rows are locked in product order so two orders never deadlock on each other's supplies.
    Returns the supplies held from."""
    held = []
    for product_id in sorted(wanted):
        quantity = wanted[product_id]
        row = await conn.fetchrow(
            """UPDATE coffee_supplies SET reserved = reserved + $3, version = version + 1, updated_at = now()
               WHERE shop_id = $1 AND product_id = $2 AND status <> 'discontinued' AND quantity - reserved >= $3
               RETURNING id, quantity, reserved, reorder_level""",
            shop_id, product_id, quantity)
        if row is None:
            available = await conn.fetchval(
                """SELECT CASE WHEN status = 'discontinued' THEN 0 ELSE quantity - reserved END
                   FROM coffee_supplies WHERE shop_id = $1 AND product_id = $2""", shop_id, product_id)
            if available is None:
                continue  # not stock-tracked at this shop
            raise Conflict("not enough stock for this order", field=fields[product_id], available=available)
        await conn.execute(
            "INSERT INTO order_reservations (order_id, supply_id, quantity, status) VALUES ($1, $2, $3, 'reserved')",
            order_id, row["id"], quantity)
        held.append(row["id"])
        available = row["quantity"] - row["reserved"]
        if available + quantity > row["reorder_level"] >= available:
            await emit(conn, "supply.low_stock_alert", "supply", row["id"],
                       {"supply_id": str(row["id"]), "shop_id": str(shop_id), "product_id": str(product_id),
                        "quantity": row["quantity"], "reserved": row["reserved"], "available": available,
                        "reorder_level": row["reorder_level"]})
    return held


def _ids(order_id: uuid.UUID | list[uuid.UUID]) -> list[uuid.UUID]:
    return order_id if isinstance(order_id, list) else [order_id]


async def release(conn: Connection, order_id: uuid.UUID) -> int:
    """Give back what an unpaid order held. Only `reserved` rows move, so a second call is a no-op."""
    rows = await conn.fetch(
        """WITH r AS (
               UPDATE order_reservations SET status = 'released', updated_at = now()
               WHERE order_id = $1 AND status = 'reserved' RETURNING supply_id, quantity)
           UPDATE coffee_supplies s SET reserved = s.reserved - r.quantity, version = s.version + 1,
                  updated_at = now()
           FROM r WHERE s.id = r.supply_id RETURNING s.id""", order_id)
    return len(rows)


async def commit(conn: Connection, order_id: uuid.UUID | list[uuid.UUID]) -> int:
    """Paid orders take their reserved stock off the shelf."""
    return await _shelf(conn, _ids(order_id), frm="reserved", to="committed", sign="-")


async def uncommit(conn: Connection, order_id: uuid.UUID | list[uuid.UUID]) -> int:
    """A reorg took payments back: the stock goes back on the shelf and is held for the orders again."""
    return await _shelf(conn, _ids(order_id), frm="committed", to="reserved", sign="+")


async def _shelf(conn: Connection, order_ids: list[uuid.UUID], *, frm: str, to: str, sign: str) -> int:
    """Move the orders' `frm` reservations to `to`, taking their quantities off the shelf (sign "-",
    reserved and on-hand both drop) or putting them back (sign "+"). `frm`/`to`/`sign` are code constants."""
    rows = await conn.fetch(
        f"""WITH r AS (
               UPDATE order_reservations SET status = '{to}', updated_at = now()
               WHERE order_id = ANY($1) AND status = '{frm}' RETURNING supply_id, quantity),
             per_supply AS (SELECT supply_id, sum(quantity)::int AS quantity FROM r GROUP BY supply_id)
           UPDATE coffee_supplies s SET quantity = s.quantity {sign} r.quantity,
                  reserved = s.reserved {sign} r.quantity, status = {_status_for(f"s.quantity {sign} r.quantity")},
                  version = s.version + 1, updated_at = now()
           FROM per_supply r WHERE s.id = r.supply_id RETURNING s.id""", order_ids)
    return len(rows)


async def take_released(conn: Connection, order_id: uuid.UUID) -> None:
    """A late payment accepted by the merchant: take the released stock directly, if it is still there."""
    rows = await conn.fetch(
        """SELECT r.supply_id, r.quantity FROM order_reservations r WHERE r.order_id = $1 AND r.status = 'released'
           ORDER BY r.supply_id""", order_id)
    for row in rows:
        taken = await conn.fetchval(
            """UPDATE coffee_supplies SET quantity = quantity - $2, version = version + 1, updated_at = now()
                WHERE id = $1 AND quantity - reserved >= $2 RETURNING id""", row["supply_id"], row["quantity"])
        if taken is None:
            raise Conflict("the stock this order held has been sold meanwhile; refund instead",
                           supply_id=str(row["supply_id"]))
        await conn.execute(f"UPDATE coffee_supplies SET status = {_STATUS} WHERE id = $1", row["supply_id"])
        await conn.execute("UPDATE order_reservations SET status = 'committed', updated_at = now() "
                           "WHERE order_id = $1 AND supply_id = $2", order_id, row["supply_id"])
