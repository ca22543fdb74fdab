"""Supplies: a shop's stock of each product, restocks, and low-stock alerts."""

from __future__ import annotations

import uuid

import msgspec
from aiohttp import web
from msgspec import UNSET

from beanpay import audit
from beanpay import cachekeys as keys
from beanpay.api.body import check_version, decode_body
from beanpay.api.http import actor, json, path_uuid, require_shop
from beanpay.api.reads import cached_read
from beanpay.api.routing import Routes
from beanpay.api.rows import to_struct, to_structs
from beanpay.api.schemas import Restock, Supply, SupplyCreate, SupplyPatch
from beanpay.api.shops import fetch_shop
from beanpay.api.state import cache, pool
from beanpay.db import Connection, transaction
from beanpay.errors import Conflict, NotFound
from beanpay.events.outbox import emit

routes = Routes()

COLUMNS = ("id, shop_id, product_id, quantity, unit, reorder_level, reserved, status, last_restocked, version, "
           "created_at, updated_at")
ROLES = ("operator", "merchant", "staff")
MAX_QUANTITY = 1_000_000_000  # the API's Count bound; keeps the INTEGER column far from overflow


def stock_status(quantity: int, reorder_level: int, discontinued: bool) -> str:
    if discontinued:
        return "discontinued"
    if quantity == 0:
        return "out_of_stock"
    return "low_stock" if quantity <= reorder_level else "in_stock"


def crossed_reorder_level(before: Supply | None, after: Supply) -> bool:
    """An alert fires once, when the level goes from above the reorder level to at or below it."""
    was_above = before is None or before.quantity > before.reorder_level
    return was_above and after.quantity <= after.reorder_level and after.status != "discontinued"


async def _fetch(conn: Connection, supply_id: uuid.UUID, *, lock: bool = False) -> Supply:
    row = await conn.fetchrow(f"SELECT {COLUMNS} FROM coffee_supplies WHERE id = $1"
                              + (" FOR UPDATE" if lock else ""), supply_id)
    if row is None:
        raise NotFound("no such supply", supply_id=str(supply_id))
    return to_struct(row, Supply)


async def _after_change(conn: Connection, request: web.Request, action: str, before: Supply | None,
                        after: Supply, event: str) -> None:
    await audit.record(conn, actor(request), action, "supply", after.id, before=before, after=after)
    await emit(conn, event, "supply", after.id, after)
    if crossed_reorder_level(before, after):
        await emit(conn, "supply.low_stock_alert", "supply", after.id,
                   {"supply_id": str(after.id), "shop_id": str(after.shop_id), "product_id": str(after.product_id),
                    "quantity": after.quantity, "reorder_level": after.reorder_level})


@routes.add("POST", "/v1/supplies", summary="Create a supply record", tag="supplies", body=SupplyCreate,
            response=Supply, status=201, auth="operator, or merchant/staff of the shop",
            errors=(400, 401, 403, 404, 409, 422))
async def create_supply(request: web.Request) -> web.Response:
    body = await decode_body(request, SupplyCreate)
    require_shop(request, body.shop_id, *ROLES)
    async with transaction(pool(request)) as conn:
        await fetch_shop(conn, body.shop_id)
        row = await conn.fetchrow(
            f"""INSERT INTO coffee_supplies (shop_id, product_id, quantity, unit, reorder_level, status)
                VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}""",
            body.shop_id, body.product_id, body.quantity, body.unit, body.reorder_level,
            stock_status(body.quantity, body.reorder_level, False))
        supply = to_struct(row, Supply)
        await _after_change(conn, request, "supply.create", None, supply, "supply.created")
    await cache(request).invalidate(keys.supplies_key(body.shop_id))
    return json(supply, status=201)


@routes.add("GET", "/v1/supplies/{supply_id}", summary="Get a supply record", tag="supplies", response=Supply,
            auth="operator, or merchant/staff of the shop", errors=(401, 403, 404))
async def get_supply(request: web.Request) -> web.Response:
    supply_id = path_uuid(request, "supply_id")
    response = await cached_read(request, keys.supply_key(supply_id), keys.TTL["supply"],
                                 lambda conn: _fetch(conn, supply_id))
    assert isinstance(response.body, bytes)
    require_shop(request, msgspec.json.decode(response.body, type=Supply).shop_id, *ROLES)
    return response


@routes.add("GET", "/v1/shops/{shop_id}/supplies", summary="A shop's supplies", tag="supplies",
            response=list[Supply], auth="operator, or merchant/staff of the shop", errors=(401, 403, 404))
async def list_shop_supplies(request: web.Request) -> web.Response:
    shop_id = path_uuid(request, "shop_id")
    require_shop(request, shop_id, *ROLES)

    async def load(conn: Connection) -> list[Supply]:
        await fetch_shop(conn, shop_id)
        rows = await conn.fetch(
            f"SELECT {COLUMNS} FROM coffee_supplies WHERE shop_id = $1 ORDER BY created_at, id", shop_id)
        return to_structs(rows, Supply)

    return await cached_read(request, keys.supplies_key(shop_id), keys.TTL["supplies"], load)


@routes.add("PATCH", "/v1/supplies/{supply_id}", summary="Update a supply record", tag="supplies",
            body=SupplyPatch, response=Supply, auth="operator, or merchant/staff of the shop",
            errors=(400, 401, 403, 404, 409, 422))
async def update_supply(request: web.Request) -> web.Response:
    supply_id = path_uuid(request, "supply_id")
    patch = await decode_body(request, SupplyPatch)
    async with transaction(pool(request)) as conn:
        before = await _fetch(conn, supply_id, lock=True)
        require_shop(request, before.shop_id, *ROLES)
        check_version(patch, before.version, "supply")
        quantity = before.quantity if patch.quantity is UNSET else patch.quantity
        reorder = before.reorder_level if patch.reorder_level is UNSET else patch.reorder_level
        unit = before.unit if patch.unit is UNSET else patch.unit
        discontinued = before.status == "discontinued" if patch.discontinued is UNSET else patch.discontinued
        row = await conn.fetchrow(
            f"""UPDATE coffee_supplies SET quantity = $2, unit = $3, reorder_level = $4, status = $5,
                       version = version + 1, updated_at = now()
                WHERE id = $1 RETURNING {COLUMNS}""",
            supply_id, quantity, unit, reorder, stock_status(quantity, reorder, discontinued))
        after = to_struct(row, Supply)
        await _after_change(conn, request, "supply.update", before, after, "supply.updated")
    await cache(request).invalidate(keys.supply_key(supply_id), keys.supplies_key(after.shop_id))
    return json(after)


@routes.add("POST", "/v1/supplies/{supply_id}/restock", summary="Add stock", tag="supplies", body=Restock,
            response=Supply, auth="operator, or merchant/staff of the shop", errors=(400, 401, 403, 404, 409, 422))
async def restock(request: web.Request) -> web.Response:
    supply_id = path_uuid(request, "supply_id")
    body = await decode_body(request, Restock)
    async with transaction(pool(request)) as conn:
        before = await _fetch(conn, supply_id, lock=True)
        require_shop(request, before.shop_id, *ROLES)
        if before.status == "discontinued":
            raise Conflict("the supply is discontinued; set discontinued=false first")
        quantity = before.quantity + body.quantity
        if quantity > MAX_QUANTITY:
            raise Conflict(f"stock would exceed {MAX_QUANTITY}", quantity=str(before.quantity))
        row = await conn.fetchrow(
            f"""UPDATE coffee_supplies SET quantity = $2, status = $3, last_restocked = now(),
                       version = version + 1, updated_at = now()
                WHERE id = $1 RETURNING {COLUMNS}""",
            supply_id, quantity, stock_status(quantity, before.reorder_level, False))
        after = to_struct(row, Supply)
        await _after_change(conn, request, "supply.restock", before, after, "supply.restocked")
    await cache(request).invalidate(keys.supply_key(supply_id), keys.supplies_key(after.shop_id))
    return json(after)


@routes.add("DELETE", "/v1/supplies/{supply_id}", summary="Delete a supply record", tag="supplies", status=204,
            auth="operator, or merchant of the shop", errors=(401, 403, 404))
async def delete_supply(request: web.Request) -> web.Response:
    supply_id = path_uuid(request, "supply_id")
    async with transaction(pool(request)) as conn:
        before = await _fetch(conn, supply_id, lock=True)
        require_shop(request, before.shop_id, "operator", "merchant")
        await conn.execute("DELETE FROM coffee_supplies WHERE id = $1", supply_id)
        await audit.record(conn, actor(request), "supply.delete", "supply", supply_id, before=before)
        await emit(conn, "supply.deleted", "supply", supply_id, {"id": str(supply_id), "shop_id": str(before.shop_id)})
    await cache(request).invalidate(keys.supply_key(supply_id), keys.supplies_key(before.shop_id))
    return web.Response(status=204)
