"""Two-level cache-aside that never makes the API fail: with Redis down, reads go to Postgres.

Level 1 is a small in-process map, level 2 is Redis with the design's keys and TTLs. Every
invalidation deletes the Redis keys and is published on a Redis channel that every API process
subscribes to, so each drops its level-1 copies. Level 1 is only trusted while that subscription is
live: when Redis goes away it is bypassed and cleared, and refilled once the subscription is back.

After a Redis error, Redis is bypassed for a short while (no request waits on a dead Redis), then
tried again, so the cache recovers by itself. Invalidations that could not be sent are kept and
replayed (deleted and published) when Redis answers again, so a write made during an outage
cannot leave a stale entry behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

import structlog
from redis.exceptions import RedisError

from beanpay import redis_client
from beanpay.api.metrics import CACHE_AVAILABLE, CACHE_BYPASS, CACHE_ERROR, CACHE_HIT, CACHE_MISS
from beanpay.cachekeys import CHANNEL

log = structlog.get_logger("cache")

LOCAL_TTL = 60.0  # seconds; bounds staleness should an invalidation message ever be missed
LOCAL_MAX = 10_000


class Cache:
    def __init__(self, url: str, *, timeout: float, retry_after: float, local_ttl: float = LOCAL_TTL,
                 local_max: int = LOCAL_MAX) -> None:
        self._redis = redis_client.connect(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                                              retry_on_timeout=False)
        # the subscriber blocks on reads by design, so it gets no read timeout; health checks find a dead link
        self._bus = redis_client.connect(url, socket_connect_timeout=timeout, health_check_interval=5)
        self._retry_after = retry_after
        self._down_until = 0.0
        self._pending: set[str] = set()
        self._local: dict[str, tuple[float, bytes]] = {}
        self._local_ttl = local_ttl
        self._local_max = local_max
        self._subscribed = asyncio.Event()
        self._generation = 0  # bumped by every invalidation; a load that raced one is not stored
        self._listener: asyncio.Task[None] | None = None
        self._closing = False  # redis-py has swallowed a cancellation before; the loop checks this too

    async def start(self) -> None:
        self._listener = asyncio.create_task(self._listen(), name="cache-invalidation-listener")

    @property
    def available(self) -> bool:
        return time.monotonic() >= self._down_until

    def _failed(self, exc: Exception) -> None:
        if self.available:
            CACHE_AVAILABLE.inc()
            log.warning("cache unavailable, serving from the database", error=str(exc))
        self._down_until = time.monotonic() + self._retry_after

    async def _flush_pending(self) -> None:
        if self._pending:
            keys = list(self._pending)
            await self._redis.delete(*keys)
            await self._redis.publish(CHANNEL, "\n".join(keys))
            self._pending.difference_update(keys)
            log.info("cache back, replayed invalidations", keys=len(keys))

    def _local_get(self, key: str) -> bytes | None:
        if not self._subscribed.is_set():
            return None
        entry = self._local.get(key)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def _local_put(self, key: str, value: bytes, generation: int, ttl: int) -> None:
        if not self._subscribed.is_set() or generation != self._generation:
            return
        if len(self._local) >= self._local_max:
            self._local.clear()  # crude but bounded; the working set refills from Redis
        self._local[key] = (time.monotonic() + min(ttl, self._local_ttl), value)

    def peek(self, key: str) -> bytes | None:
        """The in-process copy of `key`, if it has a live one (no I/O: the hot path of cached reads)."""
        local = self._local_get(key)
        if local is not None:
            CACHE_HIT.inc()
        return local

    async def get_or_load(self, key: str, ttl: int, load: Callable[[], Awaitable[bytes | None]]) -> bytes | None:
        """The cached bytes for `key`, or `load()` stored with `ttl`; None (not cached) means not found."""
        local = self._local_get(key)
        if local is not None:
            CACHE_HIT.inc()
            return local
        generation = self._generation
        if self.available:
            try:
                await self._flush_pending()
                cached = await self._redis.get(key)
                if cached is not None:
                    CACHE_HIT.inc()
                    value = cached if isinstance(cached, bytes) else cached.encode()
                    self._local_put(key, value, generation, ttl)
                    return value
                CACHE_MISS.inc()
            except (RedisError, OSError) as exc:
                CACHE_ERROR.inc()
                self._failed(exc)
        else:
            CACHE_BYPASS.inc()
        loaded = await load()
        if loaded is not None and self.available and generation == self._generation:
            try:
                await self._redis.set(key, loaded, ex=ttl)
                self._local_put(key, loaded, generation, ttl)
            except (RedisError, OSError) as exc:
                self._failed(exc)
        return loaded

    async def invalidate(self, *keys: str) -> None:
        """Drop entries everywhere after the write that changed them has committed."""
        if not keys:
            return
        self._generation += 1
        for key in keys:
            self._local.pop(key, None)
        self._pending.update(keys)
        if self.available:
            try:
                await self._flush_pending()
            except (RedisError, OSError) as exc:
                self._failed(exc)

    async def _listen(self) -> None:
        while not self._closing:
            pubsub = self._bus.pubsub()
            try:
                await pubsub.subscribe(CHANNEL)
                self._local.clear()  # anything published while we were away is unknown
                self._subscribed.set()
                while not self._closing:  # get_message runs the periodic health check that finds a silent dead link
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None and message["type"] == "message":
                        self._generation += 1
                        for key in message["data"].decode().split("\n"):
                            self._local.pop(key, None)
            except (RedisError, OSError) as exc:
                log.debug("invalidation subscription lost", error=str(exc))
            finally:
                self._subscribed.clear()
                self._local.clear()
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            if not self._closing:
                await asyncio.sleep(self._retry_after)

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except (RedisError, OSError):
            return False

    async def close(self) -> None:
        self._closing = True
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.wait([self._listener], timeout=3)
        await self._bus.aclose()
        await self._redis.aclose()
