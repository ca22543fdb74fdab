"""Favourites: the products and shops a person marked, read through the design's cache key
`user:{user_id}:favorites` (1 h) and invalidated by every change."""

from __future__ import annotations

import uuid

from aiohttp import web

from beanpay import cachekeys as keys
from beanpay import queries
from beanpay.api.cart_schemas import Favorite, Favorites
from beanpay.api.guard import signed_in
from beanpay.api.http import json, path_uuid, who
from beanpay.api.reads import cached_read
from beanpay.api.routing import Routes
from beanpay.api.rows import to_structs
from beanpay.api.state import cache, pool
from beanpay.db import Connection
from beanpay.errors import Forbidden, NotFound

routes = Routes()
SQL = queries.load("beanpay.api", "favorites.sql")
YOU = signed_in("a signed-in customer or person, for their own favourites")
KINDS = ("product", "shop")


def _person(request: web.Request) -> uuid.UUID:
    c = who(request)
    if c.kind not in ("customer", "user") or c.id is None:
        raise Forbidden("favourites belong to people (customers or accounts), not API keys")
    return c.id


def _kind(request: web.Request) -> str:
    kind = request.match_info["kind"]
    if kind not in KINDS:
        raise NotFound("favourites are products or shops", kind=kind)
    return kind


@routes.add("GET", "/v1/users/me/favorites", summary="My favourite products and shops", tag="favorites",
            response=Favorites, policy=YOU, errors=(401, 403))
async def list_favorites(request: web.Request) -> web.Response:
    user_id = _person(request)

    async def load(conn: Connection) -> Favorites:
        return Favorites(to_structs(await conn.fetch(SQL.of_user, user_id), Favorite))

    return await cached_read(request, keys.favorites_key(user_id), keys.TTL["favorites"], load)


@routes.add("PUT", "/v1/users/me/favorites/{kind}/{target_id}", summary="Mark a product or shop as a favourite",
            tag="favorites", response=Favorites, status=200, policy=YOU, errors=(401, 403, 404))
async def add_favorite(request: web.Request) -> web.Response:
    user_id, kind, target = _person(request), _kind(request), path_uuid(request, "target_id")
    async with pool(request).transaction() as conn:
        if not await conn.fetchval(SQL.target_exists, kind, target):
            raise NotFound(f"no such {kind}", id=str(target))
        await conn.fetchval(SQL.add, user_id, kind, target)
        found = Favorites(to_structs(await conn.fetch(SQL.of_user, user_id), Favorite))
    await cache(request).invalidate(keys.favorites_key(user_id))
    return json(found)  # 200 whether it was new or not: PUT says what should be


@routes.add("DELETE", "/v1/users/me/favorites/{kind}/{target_id}", summary="No longer a favourite",
            tag="favorites", status=204, policy=YOU, errors=(401, 403, 404))
async def remove_favorite(request: web.Request) -> web.Response:
    """204 whether it was a favourite or not: like PUT, DELETE says what should be, so a retry is harmless."""
    user_id, kind, target = _person(request), _kind(request), path_uuid(request, "target_id")
    async with pool(request).acquire() as conn:
        removed = await conn.fetchval(SQL.remove, user_id, kind, target)
    if removed:
        await cache(request).invalidate(keys.favorites_key(user_id))
    return web.Response(status=204)
