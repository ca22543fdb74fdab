"""Rates from each provider (static config, a Chainlink-style feed on anvil, an HTTP ticker), cached in
Redis, stale ones refused, changes announced as price.updated; orders refused without a fresh rate."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from aiohttp import web

from beanpay.engine.prices.providers import ChainlinkFeeds, HttpTicker, RateUnavailable, StaticRates
from beanpay.engine.prices.service import CACHE_KEY, RateService
from tests.conftest import Tokens
from tests.integration.engine_support import make_coffee_shop

pytest_plugins = ["tests.integration.engine_support"]


async def test_chainlink_feed_rate_and_staleness(chain_settings, anvil) -> None:
    owner = anvil(0)
    feed = await owner.deploy("TestPriceFeed")
    now = int(time.time())
    await owner.send(await feed.functions.setAnswer(3_456_78000000, now).build_transaction(
        {"from": owner.account.address}))
    provider = ChainlinkFeeds(chain_settings.evm_chains[0].rpc_url, {"ETH:USD": feed.address})
    service = RateService(msgspec.structs.replace(chain_settings, price_max_age_seconds=60), provider)
    try:
        await service.redis.hdel(CACHE_KEY, "ETH:USD")
        rate = await service.get("ETH", "USD")
        assert rate.rate == Decimal("3456.78") and rate.source == "chainlink"
        assert int(rate.as_of.timestamp()) == now
        # a round from ten minutes ago is refused, not quoted
        await owner.send(await feed.functions.setAnswer(3_000_00000000, now - 600).build_transaction(
            {"from": owner.account.address}))
        await service.redis.hdel(CACHE_KEY, "ETH:USD")
        service.forget_local()
        with pytest.raises(RateUnavailable, match="older than 60 s"):
            await service.get("ETH", "USD")
        with pytest.raises(RateUnavailable, match="no Chainlink feed"):
            await provider.fetch("BTC", "USD")
    finally:
        await service.redis.hdel(CACHE_KEY, "ETH:USD")
        await service.close()


async def test_http_ticker_reads_decimal_strings(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    async def spot(request: web.Request) -> web.Response:
        pair = request.match_info["pair"]
        if pair == "BTC-USD":
            return web.json_response({"data": {"amount": "65432.10987654", "base": "BTC", "currency": "USD"}})
        if pair == "ETH-USD":
            return web.json_response({"data": {"amount": "-1", "base": "ETH", "currency": "USD"}})
        return web.json_response({"errors": ["no"]}, status=404)

    app = web.Application()
    app.router.add_get("/v2/prices/{pair}/spot", spot)
    server = await aiohttp_server(app)
    ticker = HttpTicker(str(server.make_url("/")))
    try:
        rate = await ticker.fetch("BTC", "USD")
        assert rate.rate == Decimal("65432.10987654") and rate.source == "http"
        with pytest.raises(RateUnavailable, match="unexpected reply"):
            await ticker.fetch("ETH", "USD")
        with pytest.raises(RateUnavailable, match="HTTP 404"):
            await ticker.fetch("XMR", "USD")
    finally:
        await ticker.close()


class _Frozen(StaticRates):
    """Static rates as of a fixed time: a provider whose source stopped updating."""

    def __init__(self, rates: dict[str, Decimal], as_of: dt.datetime) -> None:
        super().__init__(rates)
        self.as_of = as_of

    async def fetch(self, asset: str, fiat: str) -> Any:
        rate = await super().fetch(asset, fiat)
        return msgspec.structs.replace(rate, as_of=self.as_of)


async def test_refresh_announces_changes_and_prices_endpoint(chain_settings, db, api) -> None:
    pairs = {"BTC:USD": Decimal("70000.5"), "ETH:USD": Decimal("3300")}
    # a lenient Redis timeout: this test is about announcing rates, and on a busy machine a first connect
    # can take longer than the 0.25 s an API request waits before it bypasses the cache
    settings = msgspec.structs.replace(chain_settings, static_rates=pairs, redis_timeout_seconds=2.0)
    service = RateService(settings)
    try:
        await service.redis.delete(CACHE_KEY)
        changed = await service.refresh(db)
        assert {(r.asset, r.rate) for r in changed} == {("BTC", Decimal("70000.5")), ("ETH", Decimal("3300"))}
        assert await service.refresh(db) == []  # unchanged: no event
        assert await service.redis.ttl(CACHE_KEY) <= 60
        events = await db.fetch("SELECT payload FROM event_outbox WHERE event_type = 'price.updated' "
                                "AND aggregate_id = 'BTC:USD' ORDER BY id DESC LIMIT 1")
        assert msgspec.json.decode(events[0]["payload"])["rate"] == "70000.5"
    finally:
        await service.redis.delete(CACHE_KEY)
        await service.close()
    resp = await api.get("/v1/prices?fiat=USD")
    assert resp.status == 200
    body = await resp.json()
    rates = {r["asset"]: r["rate"] for r in body["rates"]}
    assert rates["BTC"] == "65000" and rates["tUSDC"] == "1"
    assert (await api.get("/v1/prices?fiat=XXX")).status == 422


async def test_an_order_without_a_fresh_rate_is_refused(make_api, tokens: Tokens, chain_settings) -> None:
    api = await make_api()
    old = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    shop = await make_coffee_shop(api, tokens)
    from beanpay.api.state import RATES

    rates = api.server.app[RATES]
    rates.provider = _Frozen({"ETH:USD": Decimal("3200")}, old)
    await rates.redis.hdel(CACHE_KEY, "ETH:USD")
    resp = await api.post("/v1/orders", headers={**tokens.header("customer"), "Idempotency-Key": uuid.uuid4().hex},
                          json={"shop_id": shop.id, "items": [{"product_id": shop.product_id,
                                                               "customizations": {"size": ["small"]}}],
                                "payment": {"chain": "eth", "asset": "ETH"}})
    assert resp.status == 503
    assert "no fresh ETH/USD rate" in (await resp.json())["error"]["message"]
