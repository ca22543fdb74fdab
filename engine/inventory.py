"""Stock reservations: an unpaid order holds stock, a paid one takes it, an expired or cancelled one
gives it back. All in the caller's transaction, with the supply rows locked by their UPDATE.

Available stock is `quantity - reserved`; a reservation succeeds only while enough is available,
so concurrent orders can never oversell. A supply's status is derived from available stock by the
schema itself (migration 0006); the low-stock alert fires when that status leaves `in_stock`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

import msgspec

from beanpay import queries
from beanpay.db import Connection, fetch_as
from beanpay.errors import Conflict
from beanpay.events import catalog
from beanpay.events.outbox import Event, emit_many
from beanpay.events.payloads import LowStock

SQL = queries.load("beanpay.engine", "inventory.sql")

SHORT = frozenset({"low_stock", "out_of_stock"})


def low_stock_alert(before: str | None, after: str) -> bool:
    """The alert fires once, when stock that could be sold freely falls to or below the reorder level
    (a new supply counts as having been in stock)."""
    return (before is None or before == "in_stock") and after in SHORT


class Reserved(msgspec.Struct):
    supply_id: uuid.UUID
    product_id: uuid.UUID
    held: bool
    available_before: int
    status_before: str
    status_after: str | None
    quantity: int | None
    reserved: int | None
    reorder_level: int | None


class StockMove(msgspec.Struct, frozen=True):
    """A supply row a stock move changed (its cached copies are stale after commit)."""

    supply_id: uuid.UUID
    shop_id: uuid.UUID


class Taken(msgspec.Struct):
    supply_id: uuid.UUID
    taken: bool
    status_before: str
    status_after: str | None


def alerts(shop_id: uuid.UUID, rows: Sequence[Reserved]) -> list[Event[LowStock]]:
    """Low-stock events for the supplies a reservation moved out of `in_stock`."""
    events = []
    for r in rows:
        if not (r.held and r.status_after and low_stock_alert(r.status_before, r.status_after)):
            continue
        # a row that was held was updated, so the statement returned its new figures
        quantity, reserved, level = r.quantity or 0, r.reserved or 0, r.reorder_level or 0
        events.append(Event(catalog.SUPPLY_LOW_STOCK, r.supply_id, LowStock(
            r.supply_id, shop_id, r.product_id, quantity, reserved, quantity - reserved, level)))
    return events


def check_held(rows: Sequence[Reserved], fields: Mapping[uuid.UUID, str]) -> None:
    """Refuse the order if any stock-tracked product could not be held (names the line at fault)."""
    for r in rows:
        if not r.held:
            raise Conflict("not enough stock for this order", field=fields[r.product_id],
                           available=max(0, r.available_before))


async def reserve(conn: Connection, order_id: uuid.UUID, shop_id: uuid.UUID, wanted: Mapping[uuid.UUID, int],
                  fields: Mapping[uuid.UUID, str]) -> list[uuid.UUID]:
    """Hold `wanted[product]` units of each stock-tracked product (untracked ones need nothing).
    Returns the supplies held from; raises Conflict naming the line when stock is short."""
    if not wanted:
        return []
    products = sorted(wanted)
    rows = await fetch_as(conn, SQL.reserve, Reserved, *SQL.reserve.bind(
        order_id=order_id, shop_id=shop_id, stocked_products=products,
        stocked_quantities=[wanted[p] for p in products]))
    check_held(rows, fields)
    await emit_many(conn, alerts(shop_id, rows))
    return [r.supply_id for r in rows]


async def release(conn: Connection, order_ids: list[uuid.UUID]) -> list[StockMove]:
    """Give back what unpaid orders held. Only `reserved` rows move, so a second call is a no-op."""
    return await fetch_as(conn, SQL.release, StockMove, order_ids)


async def commit(conn: Connection, order_ids: list[uuid.UUID]) -> list[StockMove]:
    """Paid orders take their reserved stock off the shelf."""
    return await fetch_as(conn, SQL.commit, StockMove, order_ids)


async def uncommit(conn: Connection, order_ids: list[uuid.UUID]) -> list[StockMove]:
    """A reorg took payments back: the stock goes back on the shelf and is held for the orders again."""
    return await fetch_as(conn, SQL.uncommit, StockMove, order_ids)


async def take_released(conn: Connection, order_id: uuid.UUID) -> None:
    """A late payment accepted by the merchant: take the released stock directly, if it is still there."""
    rows = await fetch_as(conn, SQL.take_released, Taken, order_id)
    missing = [r for r in rows if not r.taken]
    if missing:
        raise Conflict("the stock this order held has been sold meanwhile; refund instead",
                       supply_id=str(missing[0].supply_id))
    fired = [r.supply_id for r in rows if r.status_after and low_stock_alert(r.status_before, r.status_after)]
    if fired:
        await emit_many(conn, [Event(catalog.SUPPLY_LOW_STOCK, r["id"], LowStock(
            r["id"], r["shop_id"], r["product_id"], r["quantity"], r["reserved"], r["available"], r["reorder_level"]))
            for r in await conn.fetch(SQL.low_stock_rows, fired)])
