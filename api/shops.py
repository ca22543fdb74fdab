"""Shops: CRUD, cursor-paged listing, and search near a point."""

from __future__ import annotations

import uuid

from aiohttp import web
from asyncpg import Record

from beanpay import audit
from beanpay import cachekeys as keys
from beanpay.api.body import check_version, decode_body, decode_query, patched_fields, update_statement
from beanpay.api.http import actor, json, path_id, path_uuid, require, require_shop
from beanpay.api.reads import cached_read
from beanpay.api.routing import Routes
from beanpay.api.rows import KeysetPage, decode_cursor, encode_cursor, to_struct, to_structs
from beanpay.api.schemas import Page, Shop, ShopCreate, ShopPatch, ShopQuery, encoder
from beanpay.api.state import cache, pool
from beanpay.db import Connection, transaction
from beanpay.errors import InvalidInput, NotFound
from beanpay.events.outbox import emit

routes = Routes()

COLUMNS = """id, name, address, latitude::float8 AS latitude, longitude::float8 AS longitude, phone, email,
             currency, opening_hours, status, version, created_at, updated_at"""
JSON_FIELDS = ("opening_hours",)
EARTH_KM = 6371.0088


def _shop(row: Record) -> Shop:
    return to_struct(row, Shop, JSON_FIELDS)


async def fetch_shop(conn: Connection, shop_id: uuid.UUID, *, lock: bool = False) -> Shop:
    row = await conn.fetchrow(
        f"SELECT {COLUMNS} FROM coffee_shops WHERE id = $1 AND status <> 'deleted'"
        + (" FOR UPDATE" if lock else ""), shop_id)
    if row is None:
        raise NotFound("no such shop", shop_id=str(shop_id))
    return _shop(row)


@routes.add("POST", "/v1/shops", summary="Create a shop", tag="shops", body=ShopCreate, response=Shop,
            status=201, auth="operator", errors=(400, 401, 403, 422))
async def create_shop(request: web.Request) -> web.Response:
    require(request, "operator")
    body = await decode_body(request, ShopCreate)
    async with transaction(pool(request)) as conn:
        row = await conn.fetchrow(
            f"""INSERT INTO coffee_shops (name, address, latitude, longitude, phone, email, currency,
                                          opening_hours, status)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {COLUMNS}""",
            body.name, body.address, body.latitude, body.longitude, body.phone, body.email, body.currency,
            None if body.opening_hours is None else encoder.encode(body.opening_hours).decode(), body.status)
        shop = _shop(row)
        await audit.record(conn, actor(request), "shop.create", "shop", shop.id, after=shop)
        await emit(conn, "shop.created", "shop", shop.id, shop)
    return json(shop, status=201)


@routes.add("GET", "/v1/shops/{shop_id}", summary="Get a shop", tag="shops", response=Shop, errors=(404,))
async def get_shop(request: web.Request) -> web.Response:
    shop_id = path_id(request, "shop_id")
    return await cached_read(request, keys.shop_key(shop_id), keys.TTL["shop"],
                             lambda conn: fetch_shop(conn, uuid.UUID(shop_id)))


@routes.add("GET", "/v1/shops", summary="List shops, or find shops near a point", tag="shops",
            query=ShopQuery, response=Page[Shop], errors=(422,))
async def list_shops(request: web.Request) -> web.Response:
    q = decode_query(request, ShopQuery)
    if q.near is not None:
        return json(await _near(request, q))
    page = KeysetPage(q.limit, q.cursor)
    if q.status is None:
        page.where("status <> 'deleted'")
    else:
        page.where("status = ?", q.status)
    async with pool(request).acquire() as conn:
        return json(await page.fetch(conn, COLUMNS, "coffee_shops", Shop, JSON_FIELDS))


async def _near(request: web.Request, q: ShopQuery) -> Page[Shop]:
    assert q.near is not None
    lat, lng = (float(x) for x in q.near.split(","))
    if not (-90 <= lat <= 90 and -180 <= lng <= 180):
        raise InvalidInput("bad coordinates",
                           [{"field": "query.near", "message": "lat in [-90,90], lng in [-180,180]"}])
    after_d, after_id = (-1.0, uuid.UUID(int=0))
    if q.cursor:
        after_d, after_id = decode_cursor(q.cursor, float, uuid.UUID)
    # a bounding box uses the (latitude, longitude) index; the exact haversine distance then filters and orders
    dlat = q.radius_km / 111.0
    async with pool(request).acquire() as conn:
        rows = await conn.fetch(
            f"""SELECT * FROM (
                    SELECT {COLUMNS},
                           2 * $7 * asin(sqrt(power(sin(radians(latitude::float8 - $1) / 2), 2)
                               + cos(radians($1)) * cos(radians(latitude::float8))
                               * power(sin(radians(longitude::float8 - $2) / 2), 2))) AS distance_km
                    FROM coffee_shops
                    WHERE status = 'active' AND latitude BETWEEN $1 - $3 AND $1 + $3
                ) s
                WHERE distance_km <= $4 AND (distance_km, id) > ($5, $6)
                ORDER BY distance_km, id LIMIT $8""",
            lat, lng, dlat, q.radius_km, after_d, after_id, EARTH_KM, q.limit + 1)
    shops = to_structs(rows[: q.limit], Shop, JSON_FIELDS)
    more = len(rows) > q.limit
    cursor = encode_cursor(shops[-1].distance_km, str(shops[-1].id)) if more else None
    return Page(items=shops, next_cursor=cursor)


@routes.add("PATCH", "/v1/shops/{shop_id}", summary="Update a shop", tag="shops", body=ShopPatch, response=Shop,
            auth="operator, or merchant of the shop", errors=(400, 401, 403, 404, 409, 422))
async def update_shop(request: web.Request) -> web.Response:
    shop_id = path_uuid(request, "shop_id")
    require_shop(request, shop_id, "operator", "merchant")
    patch = await decode_body(request, ShopPatch)
    changes = patched_fields(patch)
    async with transaction(pool(request)) as conn:
        before = await fetch_shop(conn, shop_id, lock=True)
        check_version(patch, before.version, "shop")
        lat, lng = changes.get("latitude", before.latitude), changes.get("longitude", before.longitude)
        if (lat is None) != (lng is None):
            raise InvalidInput("latitude and longitude go together",
                               [{"field": "$.latitude", "message": "set both latitude and longitude, or neither"}])
        sql, values = update_statement("coffee_shops", COLUMNS, changes, JSON_FIELDS)
        row = await conn.fetchrow(sql, shop_id, *values)
        after = _shop(row)
        await audit.record(conn, actor(request), "shop.update", "shop", shop_id, before=before, after=after)
        await emit(conn, "shop.updated", "shop", shop_id, after)
        if before.status != after.status and "closed" in (before.status, after.status):
            await emit(conn, "shop.closed" if after.status == "closed" else "shop.opened", "shop", shop_id, after)
    await cache(request).invalidate(keys.shop_key(shop_id), keys.menu_key(shop_id))
    return json(after)


@routes.add("DELETE", "/v1/shops/{shop_id}", summary="Delete a shop (kept for history, hidden from reads)",
            tag="shops", status=204, auth="operator", errors=(401, 403, 404))
async def delete_shop(request: web.Request) -> web.Response:
    shop_id = path_uuid(request, "shop_id")
    require(request, "operator")
    async with transaction(pool(request)) as conn:
        before = await fetch_shop(conn, shop_id, lock=True)
        await conn.execute(
            "UPDATE coffee_shops SET status = 'deleted', version = version + 1, updated_at = now() WHERE id = $1",
            shop_id)
        await audit.record(conn, actor(request), "shop.delete", "shop", shop_id, before=before)
        await emit(conn, "shop.deleted", "shop", shop_id, {"id": str(shop_id)})
    await cache(request).invalidate(keys.shop_key(shop_id), keys.menu_key(shop_id), keys.supplies_key(shop_id))
    return web.Response(status=204)

