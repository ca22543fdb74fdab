"""The rate service: one provider, rates cached in Redis (`crypto:prices`, 1 min), stale ones refused.

A quote may only use a rate the source stood behind within `price_max_age_seconds`; an older rate
(a stalled Chainlink round, a cached value from before an outage) raises RateUnavailable and the
order is refused with a 503 rather than priced wrongly. Redis is a cache only: when it is down the
provider is asked directly.
"""

from __future__ import annotations

import datetime as dt
import time

import msgspec
import redis.asyncio as redis
import structlog

from beanpay import redis_client
from beanpay.config import Settings, UnknownChain
from beanpay.db import Database
from beanpay.engine.prices.providers import ChainlinkFeeds, HttpTicker, Rate, RateProvider, RateUnavailable, StaticRates
from beanpay.events import catalog
from beanpay.events.outbox import Event, emit_many
from beanpay.events.payloads import RateUpdated

log = structlog.get_logger("prices")

CACHE_KEY = "crypto:prices"
CACHE_TTL_SECONDS = 60
LOCAL_SECONDS = 5.0  # a rate is kept in process this long: quotes need no Redis round trip

_encode = msgspec.json.Encoder(decimal_format="string").encode
_decode = msgspec.json.Decoder(Rate).decode


def provider_for(settings: Settings) -> RateProvider:
    if settings.price_provider == "chainlink":
        try:
            chain = settings.evm_chain(settings.chainlink_chain or "")
        except UnknownChain as exc:
            raise RateUnavailable(f"BEANPAY_CHAINLINK_CHAIN: {exc}") from None
        return ChainlinkFeeds(chain.rpc_url, settings.chainlink_feeds)
    if settings.price_provider == "http":
        return HttpTicker(settings.price_ticker_url)
    return StaticRates(settings.static_rates)


def quoted_pairs(settings: Settings) -> list[tuple[str, str]]:
    keys = settings.chainlink_feeds if settings.price_provider == "chainlink" else settings.static_rates
    return [(k.split(":")[0], k.split(":")[1]) for k in sorted(keys)]


class RateService:
    def __init__(self, settings: Settings, provider: RateProvider | None = None) -> None:
        self.provider = provider or provider_for(settings)
        self.max_age = dt.timedelta(seconds=settings.price_max_age_seconds)
        self.pairs = quoted_pairs(settings)
        self.redis = redis_client.connect(settings.redis_dsn, socket_timeout=settings.redis_timeout_seconds,
                                          socket_connect_timeout=settings.redis_timeout_seconds)
        self._local: dict[str, tuple[float, Rate]] = {}

    def fresh(self, rate: Rate, now: dt.datetime | None = None) -> bool:
        return (now or dt.datetime.now(dt.UTC)) - rate.as_of <= self.max_age

    async def get(self, asset: str, fiat: str) -> Rate:
        """A fresh rate for the pair: the cached one if still fresh, else the provider's."""
        field = f"{asset}:{fiat}"
        local = self._local.get(field)
        if local is not None and local[0] > time.monotonic() and self.fresh(local[1]):
            return local[1]
        try:
            cached = await self.redis.hget(CACHE_KEY, field)
        except (redis.RedisError, OSError):
            cached = None
        if cached is not None:
            rate = _decode(cached)
            if self.fresh(rate):
                self._local[field] = (time.monotonic() + LOCAL_SECONDS, rate)
                return rate
        rate = await self.provider.fetch(asset, fiat)
        if not self.fresh(rate):
            raise RateUnavailable(f"the {rate.source} rate for {asset}/{fiat} is from {rate.as_of:%Y-%m-%d %H:%M:%S}Z,"
                                  f" older than {int(self.max_age.total_seconds())} s")
        await self._store(rate)
        self._local[field] = (time.monotonic() + LOCAL_SECONDS, rate)
        return rate

    def forget_local(self) -> None:
        """Drop the in-process copies (the next `get` asks Redis, then the provider)."""
        self._local.clear()

    async def cached(self, fiat: str) -> list[Rate]:
        """Every fresh cached rate in `fiat` (for GET /v1/prices); missing pairs are fetched."""
        out = []
        for asset, pair_fiat in self.pairs:
            if pair_fiat == fiat:
                try:
                    out.append(await self.get(asset, fiat))
                except RateUnavailable as exc:
                    log.warning("rate unavailable", asset=asset, fiat=fiat, error=str(exc))
        return out

    async def _store(self, rate: Rate) -> Rate | None:
        """Cache the rate; return the one it replaced."""
        field = f"{rate.asset}:{rate.fiat}"
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hget(CACHE_KEY, field)
                pipe.hset(CACHE_KEY, field, _encode(rate))
                pipe.expire(CACHE_KEY, CACHE_TTL_SECONDS)
                previous, _, _ = await pipe.execute()
        except (redis.RedisError, OSError) as exc:
            log.warning("rate cache unavailable", error=str(exc))
            return None
        return None if previous is None else _decode(previous)

    async def refresh(self, db: Database) -> list[Rate]:
        """Fetch every quoted pair; a changed rate is cached and announced as `price.updated`."""
        changed = []
        for asset, fiat in self.pairs:
            try:
                rate = await self.provider.fetch(asset, fiat)
            except RateUnavailable as exc:
                log.warning("rate refresh failed", asset=asset, fiat=fiat, error=str(exc))
                continue
            if not self.fresh(rate):
                log.warning("stale rate ignored", asset=asset, fiat=fiat, as_of=rate.as_of.isoformat())
                continue
            previous = await self._store(rate)
            if previous is None or previous.rate != rate.rate:
                changed.append(rate)
        if changed:
            async with db.transaction() as conn:
                await emit_many(conn, [Event(catalog.PRICE_UPDATED, f"{r.asset}:{r.fiat}",
                                             RateUpdated(r.asset, r.fiat, r.rate, r.as_of, r.source)) for r in changed])
        return changed

    async def close(self) -> None:
        await self.provider.close()
        await self.redis.aclose()
