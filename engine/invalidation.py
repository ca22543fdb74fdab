"""Telling the API's caches that the engine changed rows they may hold (stock levels)."""

from __future__ import annotations

from collections.abc import Iterable

import redis.asyncio as redis
import structlog

from beanpay import redis_client
from beanpay.cachekeys import CHANNEL, supplies_key, supply_key
from beanpay.engine.inventory import StockMove

log = structlog.get_logger("engine")


class Invalidator:
    def __init__(self, redis_url: str, timeout: float) -> None:
        self.redis = redis_client.connect(redis_url, socket_timeout=timeout, socket_connect_timeout=timeout)

    async def stock_moved(self, moves: Iterable[StockMove]) -> None:
        """Drop the cached copies of these supply rows and their shops' lists (after the commit)."""
        moved = set(moves)
        if not moved:
            return
        keys = sorted({supply_key(m.supply_id) for m in moved} | {supplies_key(m.shop_id) for m in moved})
        try:
            await self.redis.delete(*keys)
            await self.redis.publish(CHANNEL, "\n".join(keys))
        except (redis.RedisError, OSError) as exc:  # the cached rows expire by their TTL
            log.warning("cache invalidation failed", keys=len(keys), error=str(exc))

    async def close(self) -> None:
        await self.redis.aclose()
