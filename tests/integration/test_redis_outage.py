"""Stop the real Redis under a running API: reads stay correct, writes still invalidate, and the
cache comes back by itself when Redis does."""

import asyncio

import redis.asyncio as aioredis

from beanpay.deploy.devstack.redis import Redis
from tests.integration.helpers import make_product, make_shop, put_on_menu


async def test_api_survives_redis_outage_and_recovers(client, tokens, settings) -> None:
    shop, product = await make_shop(client, tokens), await make_product(client, tokens)
    await put_on_menu(client, tokens, shop["id"], product["id"], "3.00")
    menu_url = f"/v1/shops/{shop['id']}/menu"
    assert (await (await client.get(menu_url)).json())["items"][0]["price"] == "3.00"  # cached now

    service = Redis(settings)
    service.stop()
    try:
        assert service.pid() is None
        for _ in range(3):
            resp = await client.get(menu_url)
            assert resp.status == 200
            assert (await resp.json())["items"][0]["price"] == "3.00"
        # a write during the outage must not leave a stale entry behind
        await put_on_menu(client, tokens, shop["id"], product["id"], "3.30")
        assert (await (await client.get(menu_url)).json())["items"][0]["price"] == "3.30"
        ready = await (await client.get("/readyz")).json()
        assert ready["status"] == "ready" and ready["redis"] == "unavailable"
    finally:
        service.start()

    r = aioredis.Redis.from_url(settings.redis_dsn)
    try:
        key = f"shop:{shop['id']}:menu"
        for _ in range(50):  # the breaker re-tries Redis after redis_retry_after_seconds
            await client.get(menu_url)
            if await r.exists(key):
                break
            await asyncio.sleep(0.2)
        assert await r.exists(key) == 1, "the cache did not recover after Redis came back"
        assert (await (await client.get(menu_url)).json())["items"][0]["price"] == "3.30"
    finally:
        await r.aclose()
