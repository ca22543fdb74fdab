"""Per-shop menus: which products a shop sells, at what price, and whether they are available now. A
shop's menu carries shared products and its own, never another shop's own (api.products)."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from beanpay import audit, queries
from beanpay import cachekeys as keys
from beanpay.api.body import decode_body
from beanpay.api.guard import allow, needs, public
from beanpay.api.http import actor, json, path_id, path_uuid
from beanpay.api.idempotency import mutation
from beanpay.api.reads import cached_read
from beanpay.api.routing import Routes
from beanpay.api.rows import to_struct, to_structs
from beanpay.api.schemas import Menu, MenuEntry, MenuEntryCreate, MenuEntryPut, MenuItem
from beanpay.api.shops import fetch_shop
from beanpay.api.state import cache, pool
from beanpay.db import Connection
from beanpay.errors import Forbidden, InvalidInput, NotFound
from beanpay.events import catalog
from beanpay.events.outbox import Event, emit_many
from beanpay.events.payloads import AvailabilityChanged, PriceChanged
from beanpay.money import check_fiat

routes = Routes()
SQL = queries.load("beanpay.api", "menus.sql")
CATALOG = needs("catalog:write", "the shop's owners and managers, operators")


async def _check(conn: Connection, shop_id: uuid.UUID, product_id: uuid.UUID, price: object) -> None:
    shop = await fetch_shop(conn, shop_id)
    product = await conn.fetchrow(SQL.product_owner, product_id)
    if product is None:
        raise NotFound("no such product", product_id=str(product_id))
    if product["shop_id"] not in (None, shop_id):  # another shop's own product: theirs to sell
        raise Forbidden("this product belongs to another shop", product_id=str(product_id))
    if why := check_fiat(price, shop.currency):  # type: ignore[arg-type]
        raise InvalidInput("invalid price", [{"field": "$.price", "message": why}])


async def _write_entry(conn: Connection, request: web.Request, shop_id: uuid.UUID, product_id: uuid.UUID,
                       entry: MenuEntryPut, *, create_only: bool) -> tuple[MenuEntry, bool]:
    await _check(conn, shop_id, product_id, entry.price)
    old = await conn.fetchrow(SQL.lock_entry, shop_id, product_id)
    before = None if old is None else to_struct(old, MenuEntry)
    if create_only or before is None:
        # a duplicate here (or a concurrent insert) is the unique constraint's 409
        row = await conn.fetchrow(SQL.insert_entry, shop_id, product_id, entry.price, entry.available)
    else:
        row = await conn.fetchrow(SQL.update_entry, shop_id, product_id, entry.price, entry.available)
    after = to_struct(row, MenuEntry)
    await audit.record(conn, actor(request), "menu.put", "shop_product", f"{shop_id}/{product_id}",
                       before=before, after=after)
    events: list[Event[Any]] = []
    if before is None or before.price != after.price:
        events.append(Event(catalog.PRODUCT_PRICE_CHANGED, product_id, PriceChanged(
            product_id, after.price, None if before is None else before.price, shop_id=shop_id)))
    if before is None or before.available != after.available:
        events.append(Event(catalog.PRODUCT_AVAILABILITY_CHANGED, product_id,
                            AvailabilityChanged(product_id, after.available, shop_id=shop_id)))
    await emit_many(conn, events)
    return after, before is None


@routes.add("PUT", "/v1/shops/{shop_id}/products/{product_id}", summary="Put a product on the menu, or change "
            "its price and availability", tag="menus", body=MenuEntryPut, response=MenuEntry,
            policy=CATALOG, errors=(400, 401, 403, 404, 422))
async def put_entry(request: web.Request) -> web.Response:
    shop_id, product_id = path_uuid(request, "shop_id"), path_uuid(request, "product_id")
    allow(request, shop_id)
    body = await decode_body(request, MenuEntryPut)
    async with pool(request).transaction() as conn:
        entry, created = await _write_entry(conn, request, shop_id, product_id, body, create_only=False)
    await cache(request).invalidate(keys.menu_key(shop_id))
    return json(entry, status=201 if created else 200)


@routes.add("POST", "/v1/shops/{shop_id}/products", summary="Add a product to the menu (409 if already there)",
            tag="menus", body=MenuEntryCreate, response=MenuEntry, status=201,
            policy=CATALOG, errors=(400, 401, 403, 404, 409, 422))
async def add_entry(request: web.Request) -> web.Response:
    shop_id = path_uuid(request, "shop_id")
    allow(request, shop_id)
    body = await decode_body(request, MenuEntryCreate)
    async with mutation(request) as m:
        entry, _ = await _write_entry(m.conn, request, shop_id, body.product_id, body, create_only=True)
        response = await m.respond(json(entry, status=201))
    await cache(request).invalidate(keys.menu_key(shop_id))
    return response


@routes.add("DELETE", "/v1/shops/{shop_id}/products/{product_id}", summary="Take a product off the menu",
            tag="menus", status=204, policy=CATALOG, errors=(401, 403, 404))
async def delete_entry(request: web.Request) -> web.Response:
    shop_id, product_id = path_uuid(request, "shop_id"), path_uuid(request, "product_id")
    allow(request, shop_id)
    async with pool(request).transaction() as conn:
        row = await conn.fetchrow(SQL.delete_entry, shop_id, product_id)
        if row is None:
            raise NotFound("the product is not on this shop's menu")
        await audit.record(conn, actor(request), "menu.delete", "shop_product", f"{shop_id}/{product_id}",
                           before=to_struct(row, MenuEntry))
        await emit_many(conn, [Event(catalog.PRODUCT_AVAILABILITY_CHANGED, product_id,
                                     AvailabilityChanged(product_id, False, shop_id=shop_id))])
    await cache(request).invalidate(keys.menu_key(shop_id))
    return web.Response(status=204)


async def load_menu(conn: Connection, shop_id: uuid.UUID) -> Menu:
    shop = await fetch_shop(conn, shop_id)
    items = to_structs(await conn.fetch(SQL.menu, shop_id), MenuItem, ("customizations",))
    return Menu(shop_id=shop.id, shop_name=shop.name, currency=shop.currency, items=items)


@routes.add("GET", "/v1/shops/{shop_id}/menu", summary="The shop's menu", tag="menus", response=Menu,
            policy=public(), errors=(404,))
async def get_menu(request: web.Request) -> web.Response:
    shop_id = path_id(request, "shop_id")
    return await cached_read(request, keys.menu_key(shop_id), keys.TTL["menu"],
                             lambda conn: load_menu(conn, uuid.UUID(shop_id)))
