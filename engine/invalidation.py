"""Telling the API's caches that the engine changed rows they may hold (stock levels)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

import redis.asyncio as redis
import structlog

from beanpay.cachekeys import CHANNEL, supplies_key, supply_key
from beanpay.db import Pool

log = structlog.get_logger("engine")


class Invalidator:
    def __init__(self, redis_url: str, timeout: float) -> None:
        self.redis = redis.Redis.from_url(redis_url, socket_timeout=timeout, socket_connect_timeout=timeout)

    async def shops_stock(self, pool: Pool, shop_ids: Iterable[uuid.UUID]) -> None:
        """Drop the cached supply rows of these shops (after the commit that changed them)."""
        shops = list(set(shop_ids))
        if not shops:
            return
        rows = await pool.fetch("SELECT id, shop_id FROM coffee_supplies WHERE shop_id = ANY($1)", shops)
        keys = [supply_key(r["id"]) for r in rows] + [supplies_key(s) for s in shops]
        try:
            await self.redis.delete(*keys)
            await self.redis.publish(CHANNEL, "\n".join(keys))
        except (redis.RedisError, OSError) as exc:  # the cached rows expire by their TTL
            log.warning("cache invalidation failed", keys=len(keys), error=str(exc))

    async def close(self) -> None:
        await self.redis.aclose()
