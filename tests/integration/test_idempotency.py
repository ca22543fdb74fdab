"""Idempotency-Key: the answer is recorded with the change, so a crash cannot separate them; keys
belong to their principal; answers keep no shown-once secret; keys expire and are pruned."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest

from beanpay import idempotency
from tests.bench.local import free_port
from tests.conftest import Tokens, wait_for
from tests.integration.engine_support import make_coffee_shop, place

pytest_plugins = ["tests.integration.engine_support"]

BEANPAY = str(Path(sys.executable).with_name("beanpay"))


def _order_body(shop: Any) -> dict[str, Any]:
    return {"shop_id": shop.id, "items": [{"product_id": shop.product_id, "customizations": {"size": ["small"]}}],
            "payment": {"chain": "eth", "asset": "tUSDC"}}


def _api(chain_settings: Any, port: int, *faults: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "BEANPAY_DATABASE_URL": chain_settings.dsn, "BEANPAY_API_PORT": str(port),
           "BEANPAY_EVM_CHAINS": msgspec.json.encode(chain_settings.evm_chains).decode(),
           "BEANPAY_LOG_LEVEL": "warning", "BEANPAY_FAULT_POINTS": json.dumps(list(faults))}
    return subprocess.Popen([BEANPAY, "api"], env=env)


async def _ready(port: int) -> bool:
    try:
        async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}/readyz") as r:
            return r.status == 200
    except aiohttp.ClientError:
        return False


async def test_an_api_killed_after_commit_answers_the_retry_with_the_same_order(
        api, tokens: Tokens, db, chain_settings) -> None:
    shop = await make_coffee_shop(api, tokens)
    user = uuid.uuid4()
    headers = {**tokens.header("customer", sub=user), "Idempotency-Key": f"crash-{uuid.uuid4()}"}
    port = free_port()
    doomed = _api(chain_settings, port, "order.after_commit")
    try:
        await wait_for(lambda: _ready(port), timeout=90)  # a start, beside the drills in `just test`
        async with aiohttp.ClientSession() as s:
            with pytest.raises(aiohttp.ClientError):  # the process died before answering
                async with s.post(f"http://127.0.0.1:{port}/v1/orders", json=_order_body(shop), headers=headers):
                    pass
        assert await asyncio.to_thread(doomed.wait, 10) == 137
    finally:
        doomed.kill()
    committed = await db.fetch("SELECT id FROM coffee_orders WHERE user_id = $1", user)
    assert len(committed) == 1, "the order committed before the crash"
    port = free_port()
    healthy = _api(chain_settings, port)
    try:
        await wait_for(lambda: _ready(port), timeout=90)  # a start, beside the drills in `just test`
        async with aiohttp.ClientSession() as s:
            async with s.post(f"http://127.0.0.1:{port}/v1/orders", json=_order_body(shop), headers=headers) as r:
                assert r.status == 201 and r.headers["Idempotent-Replayed"] == "true"
                assert (await r.json())["id"] == str(committed[0]["id"])
    finally:
        healthy.terminate()
        healthy.wait(10)
    assert await db.fetchval("SELECT count(*) FROM coffee_orders WHERE user_id = $1", user) == 1


async def test_concurrent_requests_with_one_key_make_one_order(api, tokens: Tokens, db) -> None:
    shop = await make_coffee_shop(api, tokens)
    user = uuid.uuid4()
    headers = {**tokens.header("customer", sub=user), "Idempotency-Key": "same-moment"}
    replies = await asyncio.gather(*(api.post("/v1/orders", json=_order_body(shop), headers=headers)
                                     for _ in range(8)))
    assert {r.status for r in replies} == {201}
    assert len({(await r.json())["id"] for r in replies}) == 1
    assert await db.fetchval("SELECT count(*) FROM coffee_orders WHERE user_id = $1", user) == 1


async def test_a_key_is_the_principals_own(api, tokens: Tokens, db) -> None:
    shop = await make_coffee_shop(api, tokens)
    sub = uuid.uuid4()
    mine = await place(api, tokens.header("customer", sub=sub), shop, "eth", "tUSDC", key="shared-key")
    theirs = await place(api, tokens.header("customer", sub=uuid.uuid4()), shop, "eth", "tUSDC", key="shared-key")
    assert mine["id"] != theirs["id"], "another customer's same key is another request"
    as_operator = await api.post("/v1/orders", json=_order_body(shop),
                                 headers={**tokens.header("operator", sub=sub), "Idempotency-Key": "shared-key"})
    assert as_operator.status == 201 and "Idempotent-Replayed" not in as_operator.headers
    assert (await as_operator.json())["id"] not in (mine["id"], theirs["id"]), "same subject, other role: its own"


async def test_a_replayed_webhook_registration_does_not_show_the_secret_again(api, tokens: Tokens, db) -> None:
    shop = await make_coffee_shop(api, tokens)
    body = {"url": "http://127.0.0.1:9/hook", "event_types": ["order.confirmed"]}
    headers = {**shop.merchant, "Idempotency-Key": "hook-once"}
    first = await api.post(f"/v1/shops/{shop.id}/webhooks", json=body, headers=headers)
    again = await api.post(f"/v1/shops/{shop.id}/webhooks", json=body, headers=headers)
    created, replayed = await first.json(), await again.json()
    assert created["secret"].startswith("whsec_")
    assert again.headers["Idempotent-Replayed"] == "true" and replayed["id"] == created["id"]
    assert created["secret"] not in json.dumps(replayed)
    stored = await db.fetch("SELECT response_body FROM idempotency_keys WHERE key = 'hook-once'")
    assert stored and all(created["secret"].encode() not in bytes(r["response_body"]) for r in stored)


async def test_keys_expire_and_are_pruned(api, tokens: Tokens, db) -> None:
    shop = await make_coffee_shop(api, tokens)
    customer = tokens.header("customer", sub=uuid.uuid4())
    first = await place(api, customer, shop, "eth", "tUSDC", key="short-lived")
    row = await db.fetchrow("SELECT expires_at, created_at FROM idempotency_keys WHERE key = 'short-lived'")
    assert dt.timedelta(hours=23) < row["expires_at"] - row["created_at"] <= dt.timedelta(hours=24, seconds=5)
    await db.execute("UPDATE idempotency_keys SET expires_at = now() - interval '1 s' WHERE key = 'short-lived'")
    later = await place(api, customer, shop, "eth", "tUSDC", key="short-lived")
    assert later["id"] != first["id"], "an expired key is a new request"
    await db.execute("UPDATE idempotency_keys SET expires_at = now() - interval '1 s' WHERE key = 'short-lived'")
    assert await idempotency.prune(db) >= 1
    assert await db.fetchval("SELECT count(*) FROM idempotency_keys WHERE key = 'short-lived'") == 0
