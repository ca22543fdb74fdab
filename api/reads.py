"""Cached single-resource reads: Redis/near cache first, Postgres on a miss, 404 when absent."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from beanpay.api.http import raw_json
from beanpay.api.schemas import encoder
from beanpay.api.state import cache, pool
from beanpay.db import Connection
from beanpay.errors import NotFound


async def cached_read(request: web.Request, key: str, ttl: int,
                      load: Callable[[Connection], Awaitable[Any]]) -> web.Response:
    """Serve `key` from the cache, or `load` it (which raises NotFound when absent) and cache it."""
    near = cache(request).peek(key)
    if near is not None:
        return raw_json(near)
    missing: NotFound | None = None

    async def fill() -> bytes | None:
        nonlocal missing
        async with pool(request).acquire() as conn:
            try:
                return encoder.encode(await load(conn))
            except NotFound as exc:
                missing = exc
                return None

    body = await cache(request).get_or_load(key, ttl, fill)
    if body is None:
        raise missing or NotFound("not found")
    return raw_json(body)
