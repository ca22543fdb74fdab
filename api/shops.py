"""Shops: CRUD, cursor-paged listing, and search near a point."""

from __future__ import annotations

import uuid

import msgspec
from aiohttp import web

from beanpay import audit, queries
from beanpay import cachekeys as keys
from beanpay.api.body import check_version, decode_body, decode_query, merged
from beanpay.api.guard import OPERATORS, allow, needs, public
from beanpay.api.http import actor, json, path_id, path_uuid, who
from beanpay.api.idempotency import mutation
from beanpay.api.reads import cached_read
from beanpay.api.routing import Routes
from beanpay.api.rows import decode_cursor, encode_cursor, keyset, page_of, to_struct, to_structs
from beanpay.api.schemas import Page, Shop, ShopCreate, ShopPatch, ShopQuery, encoder
from beanpay.api.state import cache, pool
from beanpay.db import Connection
from beanpay.errors import Forbidden, InvalidInput, NotFound, Unauthorized
from beanpay.events import catalog
from beanpay.events.outbox import Event, emit_many
from beanpay.events.payloads import Deleted

routes = Routes()
SQL = queries.load("beanpay.api", "shops.sql")
JSON_FIELDS = ("opening_hours",)
EARTH_KM = 6371.0088


def _json(value: object) -> str | None:
    return None if value is None else encoder.encode(value).decode()


async def fetch_shop(conn: Connection, shop_id: uuid.UUID, *, lock: bool = False) -> Shop:
    row = await conn.fetchrow(SQL.lock if lock else SQL.fetch, shop_id)
    if row is None:
        raise NotFound("no such shop", shop_id=str(shop_id))
    return to_struct(row, Shop, JSON_FIELDS)


@routes.add("POST", "/v1/shops", summary="Create a shop", tag="shops", body=ShopCreate, response=Shop,
            status=201, policy=OPERATORS, errors=(400, 401, 403, 422))
async def create_shop(request: web.Request) -> web.Response:
    body = await decode_body(request, ShopCreate)
    async with mutation(request) as m:
        shop = to_struct(await m.conn.fetchrow(
            SQL.insert, body.name, body.address, body.latitude, body.longitude, body.phone, body.email, body.currency,
            _json(body.opening_hours), body.status), Shop, JSON_FIELDS)
        await audit.record(m.conn, actor(request), "shop.create", "shop", shop.id, after=shop)
        await emit_many(m.conn, [Event(catalog.SHOP_CREATED, shop.id, shop)])
        return await m.respond(json(shop, status=201))


@routes.add("GET", "/v1/shops/{shop_id}", summary="Get a shop", tag="shops", response=Shop, policy=public(),
            errors=(404,))
async def get_shop(request: web.Request) -> web.Response:
    shop_id = path_id(request, "shop_id")
    return await cached_read(request, keys.shop_key(shop_id), keys.TTL["shop"],
                             lambda conn: fetch_shop(conn, uuid.UUID(shop_id)))


@routes.add("GET", "/v1/shops", summary="List shops, or find shops near a point", tag="shops",
            query=ShopQuery, response=Page[Shop],
            policy=public("anyone; deleted shops: operators, and owners their own"),
            errors=(401, 403, 422))
async def list_shops(request: web.Request) -> web.Response:
    q = decode_query(request, ShopQuery)
    if q.near is not None:
        return json(await _near(request, q))
    after, after_id = keyset(q.cursor)
    only = deleted_visible_to(request) if q.status == "deleted" else None
    async with pool(request).acquire() as conn:
        rows = await conn.fetch(SQL.page, q.limit + 1, after, after_id, q.status,
                                None if only is None else list(only))
    return json(page_of(rows, q.limit, Shop, JSON_FIELDS))


def deleted_visible_to(request: web.Request) -> frozenset[uuid.UUID] | None:
    """The deleted shops the caller may list: every one (None) for operators, owners their own."""
    p = who(request)
    if p.kind == "anonymous":
        raise Unauthorized("deleted shops are listed to operators and their owners only; sign in")
    shops = p.shops_with("shops:read-deleted") if p.kind == "user" else frozenset()
    if shops is not None and not shops:
        raise Forbidden("deleted shops are listed to operators and their owners only")
    return shops


async def _near(request: web.Request, q: ShopQuery) -> Page[Shop]:
    assert q.near is not None
    lat, lng = (float(x) for x in q.near.split(","))
    if not (-90 <= lat <= 90 and -180 <= lng <= 180):
        raise InvalidInput("bad coordinates",
                           [{"field": "query.near", "message": "lat in [-90,90], lng in [-180,180]"}])
    after_d, after_id = (-1.0, uuid.UUID(int=0))
    if q.cursor:
        after_d, after_id = decode_cursor(q.cursor, float, uuid.UUID)
    async with pool(request).acquire() as conn:
        rows = await conn.fetch(SQL.near, lat, lng, q.radius_km / 111.0, q.radius_km, after_d, after_id, EARTH_KM,
                                q.limit + 1)
    shops = to_structs(rows[: q.limit], Shop, JSON_FIELDS)
    more = len(rows) > q.limit
    cursor = encode_cursor(shops[-1].distance_km, str(shops[-1].id)) if more else None
    return Page(items=shops, next_cursor=cursor)


@routes.add("PATCH", "/v1/shops/{shop_id}", summary="Update a shop", tag="shops", body=ShopPatch, response=Shop,
            policy=needs("shops:write", "the shop's owners and managers, operators"),
            errors=(400, 401, 403, 404, 409, 422))
async def update_shop(request: web.Request) -> web.Response:
    shop_id = path_uuid(request, "shop_id")
    allow(request, shop_id)
    patch = await decode_body(request, ShopPatch)
    async with pool(request).transaction() as conn:
        before = await fetch_shop(conn, shop_id, lock=True)
        check_version(patch, before.version, "shop")
        want = merged(before, patch)
        if (want.latitude is None) != (want.longitude is None):
            raise InvalidInput("latitude and longitude go together",
                               [{"field": "$.latitude", "message": "set both latitude and longitude, or neither"}])
        after = to_struct(await conn.fetchrow(
            SQL.update, shop_id, want.name, want.address, want.latitude, want.longitude, want.phone, want.email,
            _json(want.opening_hours), want.status), Shop, JSON_FIELDS)
        await audit.record(conn, actor(request), "shop.update", "shop", shop_id, before=before, after=after)
        events: list[Event[msgspec.Struct]] = [Event(catalog.SHOP_UPDATED, shop_id, after)]
        if before.status != after.status and "closed" in (before.status, after.status):
            events.append(Event(catalog.SHOP_CLOSED if after.status == "closed" else catalog.SHOP_OPENED,
                                shop_id, after))
        await emit_many(conn, events)
    await cache(request).invalidate(keys.shop_key(shop_id), keys.menu_key(shop_id))
    return json(after)


@routes.add("DELETE", "/v1/shops/{shop_id}", summary="Delete a shop (kept for history, hidden from reads)",
            tag="shops", status=204, policy=OPERATORS, errors=(401, 403, 404))
async def delete_shop(request: web.Request) -> web.Response:
    shop_id = path_uuid(request, "shop_id")
    async with pool(request).transaction() as conn:
        before = await fetch_shop(conn, shop_id, lock=True)
        await conn.execute(SQL.delete, shop_id)
        await audit.record(conn, actor(request), "shop.delete", "shop", shop_id, before=before)
        await emit_many(conn, [Event(catalog.SHOP_DELETED, shop_id, Deleted(shop_id))])
    await cache(request).invalidate(keys.shop_key(shop_id), keys.menu_key(shop_id), keys.supplies_key(shop_id))
    return web.Response(status=204)
