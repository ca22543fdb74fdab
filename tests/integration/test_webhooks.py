"""Merchant webhooks end to end: outbox -> Kafka -> fan-out -> signed deliveries to a real local
receiver that verifies them with the reference `standardwebhooks` library; retries while it is down,
every event once when it is back; failure after the last attempt; redelivery."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from tests import secrets_watch
from tests.conftest import Tokens, wait_for
from tests.integration.engine_support import make_coffee_shop, pay_directly, place
from tests.integration.webhook_support import Receiver

pytest_plugins = ["tests.integration.engine_support", "tests.integration.webhook_support"]


async def _register(api: Any, shop: Any, url: str, types: list[str]) -> dict[str, Any]:
    resp = await api.post(f"/v1/shops/{shop.id}/webhooks", json={"url": url, "event_types": types},
                          headers=shop.merchant)
    assert resp.status == 201, await resp.text()
    created = dict(await resp.json())
    assert created["secret"].startswith("whsec_")
    secrets_watch.watch(created["secret"])
    listed = await (await api.get(f"/v1/shops/{shop.id}/webhooks", headers=shop.merchant)).json()
    assert all("secret" not in h for h in listed)  # shown once, at creation
    return created


async def test_a_receiver_down_for_a_while_gets_every_event_once(
        api, tokens: Tokens, db, engine, delivery_services) -> None:
    await delivery_services(1000)
    shop = await make_coffee_shop(api, tokens)
    receiver = Receiver()
    hook = await _register(api, shop, receiver.url, ["*"])
    receiver.secret = hook["secret"]
    customer = tokens.header("customer", sub=uuid.uuid4())
    order = await place(api, customer, shop, "eth", "tUSDC")
    await pay_directly(db, order)
    await engine()
    endpoint = uuid.UUID(hook["id"])

    async def retrying() -> bool:  # the receiver is down: attempts pile up, nothing is lost
        rows = await db.fetch("SELECT status, attempts FROM webhook_deliveries WHERE endpoint_id = $1", endpoint)
        return len(rows) >= 4 and all(r["status"] == "pending" and r["attempts"] >= 3 for r in rows)

    await wait_for(retrying, timeout=60)
    await receiver.start()
    try:
        async def delivered() -> bool:
            rows = await db.fetch("SELECT status FROM webhook_deliveries WHERE endpoint_id = $1", endpoint)
            return bool(rows) and all(r["status"] == "succeeded" for r in rows)

        await wait_for(delivered, timeout=60)
        # the relay deleted the published events from the outbox: each is one delivery to the endpoint
        expected = [r["event_id"] for r in await db.fetch(
            "SELECT event_id FROM webhook_deliveries WHERE endpoint_id = $1", endpoint)]
        assert set(receiver.seen) == {str(e) for e in expected}
        assert set(receiver.seen.values()) == {1} and receiver.bad_signatures == 0
        assert {"order.created", "payment.initiated", "payment.confirmed", "order.confirmed"} <= set(
            receiver.types.values())

        log = await (await api.get(f"/v1/shops/{shop.id}/webhooks/{hook['id']}/deliveries",
                                   headers=shop.merchant)).json()
        first = log["items"][0]
        assert first["status"] == "succeeded" and first["attempts"] >= 2
        resp = await api.post(f"/v1/shops/{shop.id}/webhooks/{hook['id']}/deliveries/{first['id']}/redeliver",
                              headers=shop.merchant)
        assert resp.status == 202
        await wait_for(lambda: _async(receiver.seen[str(first["event_id"])] == 2), timeout=30)
    finally:
        await receiver.stop()


async def _async(value: bool) -> bool:
    return value


async def test_a_failing_receiver_ends_failed_and_stays_redeliverable(
        api, tokens: Tokens, db, engine, delivery_services, chain_settings) -> None:
    await delivery_services(4)
    shop = await make_coffee_shop(api, tokens)
    receiver = Receiver()
    hook = await _register(api, shop, receiver.url, ["order.created"])
    receiver.secret = hook["secret"]
    receiver.status = 500
    await receiver.start()
    try:
        await place(api, tokens.header("customer", sub=uuid.uuid4()), shop, "eth", "tUSDC")
        endpoint = uuid.UUID(hook["id"])

        async def failed() -> Any:
            return await db.fetchrow("SELECT * FROM webhook_deliveries WHERE endpoint_id = $1 AND status = 'failed'",
                                     endpoint)

        row = await wait_for(failed, timeout=60)
        assert row["attempts"] == 4 and row["last_status"] == 500
        attempts = await db.fetchval("SELECT count(*) FROM webhook_attempts WHERE delivery_id = $1", row["id"])
        assert attempts == 4
        receiver.status = 200
        cli = await asyncio.to_thread(
            subprocess.run, [str(Path(sys.executable).parent / "beanpay"), "webhooks", "redeliver", "--endpoint",
                             hook["id"]], env={**os.environ, "BEANPAY_DATABASE_URL": chain_settings.dsn},
            capture_output=True, text=True, timeout=60)
        assert cli.returncode == 0 and "queued 1 delivery" in cli.stdout, cli.stderr
        await wait_for(lambda: _async(receiver.seen[str(row["event_id"])] == 1), timeout=30)
    finally:
        await receiver.stop()


async def test_endpoint_validation_and_scoping(api, tokens: Tokens) -> None:
    shop = await make_coffee_shop(api, tokens)
    other = await make_coffee_shop(api, tokens)
    for url in ("ftp://x", "http://[", "http://host:99999999/"):  # the last two once reached urlsplit's errors
        resp = await api.post(f"/v1/shops/{shop.id}/webhooks", json={"url": url, "event_types": ["*"]},
                              headers=shop.merchant)
        assert resp.status == 422, url
    resp = await api.post(f"/v1/shops/{shop.id}/webhooks", json={"url": "https://example.com/h",
                                                                  "event_types": ["order.nope"]},
                          headers=shop.merchant)
    assert resp.status == 422 and (await resp.json())["error"]["fields"][0]["field"] == "event_types[0]"
    resp = await api.post(f"/v1/shops/{shop.id}/webhooks", json={"url": "https://example.com/h",
                                                                  "event_types": ["*"]}, headers=other.merchant)
    assert resp.status == 403
    resp = await api.post(f"/v1/shops/{shop.id}/webhooks", json={"url": "https://example.com/h",
                                                                  "event_types": ["*"]}, headers=shop.staff)
    assert resp.status == 403
    hook = await _register(api, shop, "https://example.com/h", ["order.created"])
    resp = await api.patch(f"/v1/shops/{shop.id}/webhooks/{hook['id']}", json={"enabled": False},
                           headers=shop.merchant)
    assert resp.status == 200 and (await resp.json())["enabled"] is False
    resp = await api.delete(f"/v1/shops/{shop.id}/webhooks/{hook['id']}", headers=shop.merchant)
    assert resp.status == 204
    assert (await api.delete(f"/v1/shops/{shop.id}/webhooks/{hook['id']}", headers=shop.merchant)).status == 404


async def test_a_redelivery_wakes_the_senders_after_its_commit(api, tokens: Tokens, settings, db) -> None:
    """A redelivery wakes the senders: its pool sends the NOTIFY once the transaction has committed (the
    statement no longer notifies from inside it)."""
    from beanpay.db import connect
    from beanpay.engine.webhooks.fanout import NOTIFY
    from beanpay.engine.webhooks.sender import redeliver

    shop = await make_coffee_shop(api, tokens)
    endpoint = await db.fetchval(
        "INSERT INTO webhook_endpoints (shop_id, url, event_types, secret) VALUES ($1, 'http://127.0.0.1:9/x', "
        "ARRAY['*'], 'whsec_dGVzdA==') RETURNING id", uuid.UUID(shop.id))
    delivery = await db.fetchval(
        "INSERT INTO webhook_deliveries (endpoint_id, event_id, event_type, body, status) "
        "VALUES ($1, $2, 'order.created', '{}', 'failed') RETURNING id", endpoint, uuid.uuid4())
    listener = await connect(settings)
    heard: list[str] = []
    await listener.add_listener(NOTIFY, lambda *_: heard.append("woken"))
    try:
        async with db.transaction() as conn:
            assert await redeliver(conn, [delivery]) == [delivery]
            await asyncio.sleep(0.3)
            assert heard == [], "nothing is sent before the commit"
        await wait_for(lambda: _heard(heard), timeout=5)
        assert await db.fetchval("SELECT status FROM webhook_deliveries WHERE id = $1", delivery) == "pending"
    finally:
        await listener.close()


async def _heard(heard: list[str]) -> bool:
    return bool(heard)
