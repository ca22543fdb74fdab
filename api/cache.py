"""Redis cache-aside that never makes the API fail: with Redis down, reads go to Postgres.

After a Redis error the cache is bypassed for a short while (no request waits on a dead Redis),
then tried again, so it recovers by itself. Invalidations that could not be sent are kept and
replayed when Redis answers again, so a write made during an outage cannot leave a stale entry.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from api.metrics import CACHE, CACHE_AVAILABLE

log = structlog.get_logger("cache")

# the design's keys and TTLs (seconds)
TTL = {
    "shop": 4 * 3600,
    "product": 2 * 3600,
    "menu": 2 * 3600,
    "supply": 30 * 60,
    "supplies": 15 * 60,
}


def shop_key(shop_id: object) -> str:
    return f"shop:{shop_id}"


def product_key(product_id: object) -> str:
    return f"product:{product_id}"


def menu_key(shop_id: object) -> str:
    return f"shop:{shop_id}:menu"


def supply_key(supply_id: object) -> str:
    return f"supply:{supply_id}"


def supplies_key(shop_id: object) -> str:
    return f"shop:{shop_id}:supplies"


class Cache:
    def __init__(self, url: str, *, timeout: float, retry_after: float) -> None:
        self._redis = aioredis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                                              retry_on_timeout=False)
        self._retry_after = retry_after
        self._down_until = 0.0
        self._pending_deletes: set[str] = set()

    @property
    def available(self) -> bool:
        return time.monotonic() >= self._down_until

    def _failed(self, exc: Exception) -> None:
        if self.available:
            CACHE_AVAILABLE.inc()
            log.warning("cache unavailable, serving from the database", error=str(exc))
        self._down_until = time.monotonic() + self._retry_after

    async def _recovered(self) -> None:
        if self._pending_deletes:
            keys = list(self._pending_deletes)
            await self._redis.delete(*keys)
            self._pending_deletes.difference_update(keys)
            log.info("cache back, replayed invalidations", keys=len(keys))

    async def get_or_load(self, key: str, ttl: int, load: Callable[[], Awaitable[bytes | None]]) -> bytes | None:
        """The cached bytes for `key`, or `load()` stored with `ttl`; None (not cached) means not found."""
        if self.available:
            try:
                await self._recovered()
                cached = await self._redis.get(key)
                if cached is not None:
                    CACHE.labels("hit").inc()
                    return cached if isinstance(cached, bytes) else cached.encode()
                CACHE.labels("miss").inc()
            except (RedisError, OSError) as exc:
                CACHE.labels("error").inc()
                self._failed(exc)
        else:
            CACHE.labels("bypass").inc()
        value = await load()
        if value is not None and self.available:
            try:
                await self._redis.set(key, value, ex=ttl)
            except (RedisError, OSError) as exc:
                self._failed(exc)
        return value

    async def invalidate(self, *keys: str) -> None:
        """Drop entries after the write that changed them has committed."""
        if not keys:
            return
        if self.available:
            try:
                await self._recovered()
                await self._redis.delete(*keys)
                return
            except (RedisError, OSError) as exc:
                self._failed(exc)
        self._pending_deletes.update(keys)

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except (RedisError, OSError):
            return False

    async def close(self) -> None:
        await self._redis.aclose()
