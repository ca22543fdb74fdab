"""Supplies: a shop's stock of each product, restocks, and low-stock alerts.

A supply's status (in stock, low, out, discontinued) is derived by the schema from what can still
be sold; the alert rule is engine.inventory's, the same one reservations use.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from aiohttp import web
from msgspec import UNSET

from beanpay import audit, queries
from beanpay import cachekeys as keys
from beanpay.api.body import check_version, decode_body
from beanpay.api.guard import allow, needs
from beanpay.api.http import actor, json, path_uuid
from beanpay.api.idempotency import mutation
from beanpay.api.reads import cached_read
from beanpay.api.routing import Routes
from beanpay.api.rows import to_struct, to_structs
from beanpay.api.schemas import Restock, Supply, SupplyCreate, SupplyPatch
from beanpay.api.shops import fetch_shop
from beanpay.api.state import cache, pool
from beanpay.db import Connection
from beanpay.engine.inventory import low_stock_alert
from beanpay.errors import Conflict, NotFound
from beanpay.events import catalog
from beanpay.events.catalog import EventType
from beanpay.events.outbox import Event, emit_many
from beanpay.events.payloads import Deleted, LowStock

routes = Routes()
SQL = queries.load("beanpay.api", "supplies.sql")
READ = needs("supplies:read", "the shop's staff, managers and owners, operators")
WRITE = needs("supplies:write", "the shop's staff, managers and owners, operators")
MAX_QUANTITY = 1_000_000_000  # the API's Count bound; keeps the INTEGER column far from overflow


async def _fetch(conn: Connection, supply_id: uuid.UUID, *, lock: bool = False) -> Supply:
    row = await conn.fetchrow(SQL.lock if lock else SQL.fetch, supply_id)
    if row is None:
        raise NotFound("no such supply", supply_id=str(supply_id))
    return to_struct(row, Supply)


async def _after_change(conn: Connection, request: web.Request, action: str, before: Supply | None,
                        after: Supply, event: EventType[msgspec.Struct]) -> None:
    await audit.record(conn, actor(request), action, "supply", after.id, before=before, after=after)
    events: list[Event[Any]] = [Event(event, after.id, after)]
    if low_stock_alert(None if before is None else before.status, after.status):
        events.append(Event(catalog.SUPPLY_LOW_STOCK, after.id, LowStock(
            after.id, after.shop_id, after.product_id, after.quantity, after.reserved,
            after.quantity - after.reserved, after.reorder_level)))
    await emit_many(conn, events)


@routes.add("POST", "/v1/supplies", summary="Create a supply record", tag="supplies", body=SupplyCreate,
            response=Supply, status=201, policy=WRITE,
            errors=(400, 401, 403, 404, 409, 422))
async def create_supply(request: web.Request) -> web.Response:
    body = await decode_body(request, SupplyCreate)
    allow(request, body.shop_id)
    async with mutation(request) as m:
        await fetch_shop(m.conn, body.shop_id)
        supply = to_struct(await m.conn.fetchrow(SQL.insert, body.shop_id, body.product_id, body.quantity, body.unit,
                                                 body.reorder_level), Supply)
        await _after_change(m.conn, request, "supply.create", None, supply, catalog.SUPPLY_CREATED)
        response = await m.respond(json(supply, status=201))
    await cache(request).invalidate(keys.supplies_key(body.shop_id))
    return response


@routes.add("GET", "/v1/supplies/{supply_id}", summary="Get a supply record", tag="supplies", response=Supply,
            policy=READ, errors=(401, 403, 404))
async def get_supply(request: web.Request) -> web.Response:
    supply_id = path_uuid(request, "supply_id")
    response = await cached_read(request, keys.supply_key(supply_id), keys.TTL["supply"],
                                 lambda conn: _fetch(conn, supply_id))
    assert isinstance(response.body, bytes)
    allow(request, msgspec.json.decode(response.body, type=Supply).shop_id)
    return response


@routes.add("GET", "/v1/shops/{shop_id}/supplies", summary="A shop's supplies", tag="supplies",
            response=list[Supply], policy=READ, errors=(401, 403, 404))
async def list_shop_supplies(request: web.Request) -> web.Response:
    shop_id = path_uuid(request, "shop_id")
    allow(request, shop_id)

    async def load(conn: Connection) -> list[Supply]:
        await fetch_shop(conn, shop_id)
        return to_structs(await conn.fetch(SQL.of_shop, shop_id), Supply)

    return await cached_read(request, keys.supplies_key(shop_id), keys.TTL["supplies"], load)


@routes.add("PATCH", "/v1/supplies/{supply_id}", summary="Update a supply record", tag="supplies",
            body=SupplyPatch, response=Supply, policy=WRITE,
            errors=(400, 401, 403, 404, 409, 422))
async def update_supply(request: web.Request) -> web.Response:
    supply_id = path_uuid(request, "supply_id")
    patch = await decode_body(request, SupplyPatch)
    async with pool(request).transaction() as conn:
        before = await _fetch(conn, supply_id, lock=True)
        allow(request, before.shop_id)
        check_version(patch, before.version, "supply")
        quantity = before.quantity if patch.quantity is UNSET else patch.quantity
        if quantity < before.reserved:
            raise Conflict(f"{before.reserved} unit(s) are held for unpaid orders; quantity must be at least that",
                           field="quantity", reserved=str(before.reserved))
        row = await conn.fetchrow(
            SQL.update, supply_id, quantity, before.unit if patch.unit is UNSET else patch.unit,
            before.reorder_level if patch.reorder_level is UNSET else patch.reorder_level,
            before.status == "discontinued" if patch.discontinued is UNSET else patch.discontinued)
        after = to_struct(row, Supply)
        await _after_change(conn, request, "supply.update", before, after, catalog.SUPPLY_UPDATED)
    await cache(request).invalidate(keys.supply_key(supply_id), keys.supplies_key(after.shop_id))
    return json(after)


@routes.add("POST", "/v1/supplies/{supply_id}/restock", summary="Add stock", tag="supplies", body=Restock,
            response=Supply, policy=WRITE, errors=(400, 401, 403, 404, 409, 422))
async def restock(request: web.Request) -> web.Response:
    supply_id = path_uuid(request, "supply_id")
    body = await decode_body(request, Restock)
    async with mutation(request) as m:
        before = await _fetch(m.conn, supply_id, lock=True)
        allow(request, before.shop_id)
        if before.status == "discontinued":
            raise Conflict("the supply is discontinued; set discontinued=false first")
        if before.quantity + body.quantity > MAX_QUANTITY:
            raise Conflict(f"stock would exceed {MAX_QUANTITY}", quantity=str(before.quantity))
        after = to_struct(await m.conn.fetchrow(SQL.restock, supply_id, body.quantity), Supply)
        await _after_change(m.conn, request, "supply.restock", before, after, catalog.SUPPLY_RESTOCKED)
        response = await m.respond(json(after))
    await cache(request).invalidate(keys.supply_key(supply_id), keys.supplies_key(after.shop_id))
    return response


@routes.add("DELETE", "/v1/supplies/{supply_id}", summary="Delete a supply record", tag="supplies", status=204,
            policy=needs("catalog:write", "the shop's owners and managers, operators"), errors=(401, 403, 404))
async def delete_supply(request: web.Request) -> web.Response:
    supply_id = path_uuid(request, "supply_id")
    async with pool(request).transaction() as conn:
        before = await _fetch(conn, supply_id, lock=True)
        allow(request, before.shop_id)
        await conn.execute(SQL.delete, supply_id)
        await audit.record(conn, actor(request), "supply.delete", "supply", supply_id, before=before)
        await emit_many(conn, [Event(catalog.SUPPLY_DELETED, supply_id, Deleted(supply_id, before.shop_id))])
    await cache(request).invalidate(keys.supply_key(supply_id), keys.supplies_key(before.shop_id))
    return web.Response(status=204)
