"""What the data-flow tests share: the outbox relay running, API keys with chosen permissions, a shop
manager's session, a reader of the shop's event stream, and a paid order with a refund issued on it."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import secrets
import uuid
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest

from beanpay.api.feed import FEED
from beanpay.config import Settings
from beanpay.engine.notifications.fanout import TOPICS as NOTIFIED_TOPICS
from beanpay.engine.notifications.fanout import Notifier
from tests import secrets_watch
from tests.bench.local import group_at_end
from tests.conftest import Tokens, wait_for
from tests.integration.browser import relay  # noqa: F401  (the outbox relay running: a fixture)
from tests.integration.engine_support import Shop, pay_directly, place
from tests.integration.helpers import PASSWORD, person_at


async def api_key(db: Any, shop_id: str, *permissions: str) -> dict[str, str]:
    """An API key of the shop holding exactly `permissions`, as its Authorization header."""
    key = "bp_" + secrets.token_urlsafe(32)
    secrets_watch.watch(key)
    await db.execute("""INSERT INTO api_keys (key_digest, prefix, name, permissions, shop_ids)
                        VALUES ($1, $2, $3, $4, $5)""", hashlib.sha256(key.encode()).digest(), key[:10],
                     "+".join(permissions), sorted(permissions), [uuid.UUID(shop_id)])
    return {"Authorization": f"Bearer {key}"}


async def signed_in(api: Any, tokens: Tokens, db: Any, shop_id: str, role: str) -> dict[str, str]:
    """A person with `role` at the shop, signed in: their session cookie and CSRF token (for writes)."""
    email = await person_at(api, tokens, db, shop_id, role, role.title())
    resp = await api.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert resp.status == 200, await resp.text()
    session, csrf = resp.cookies["bp_session"].value, (await resp.json())["csrf_token"]
    secrets_watch.watch(session, PASSWORD)
    return {"Cookie": f"bp_session={session}", "X-CSRF-Token": csrf}


class ShopStream:
    """GET /v1/shops/{id}/events held open and read in the background: every message as (type, data)."""

    def __init__(self, api: Any, shop_id: str, headers: dict[str, str]) -> None:
        self.api, self.shop_id, self.headers = api, shop_id, headers
        self.status = 0
        self.text = ""  # everything the stream sent, to look for a token anywhere in it
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self._resp: Any = None
        self._task: asyncio.Task[None] | None = None

    async def open(self) -> int:
        self._resp = await self.api.get(f"/v1/shops/{self.shop_id}/events", headers=self.headers)
        self.status = self._resp.status
        if self.status == 200:
            self._task = asyncio.create_task(self._read())
        else:
            await self._resp.release()
        return self.status

    async def _read(self) -> None:
        with contextlib.suppress(Exception):
            async for raw in self._resp.content:
                line = raw.decode()
                self.text += line
                if line.startswith("data: {"):
                    found = json.loads(line[len("data: "):])
                    if "type" in found:
                        self.messages.append((found["type"], found["data"]))

    def of(self, kind: str, **match: str) -> list[dict[str, Any]]:
        return [d for t, d in self.messages if t == kind and all(d.get(k) == v for k, v in match.items())]

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._resp is not None:
            self._resp.close()


async def feed_listening(api: Any) -> None:
    """The API process's feed reads Kafka (it starts with the first stream, at the topics' ends)."""
    async def connected() -> bool:
        return bool(api.app[FEED].connected)

    await wait_for(connected, timeout=30)
    await asyncio.sleep(2)  # its partitions assigned and positioned at their ends


async def paid_order(api: Any, db: Any, engine: Any, shop: Shop, customer: dict[str, str]) -> dict[str, Any]:
    order = await place(api, customer, shop, "eth", "ETH")
    await pay_directly(db, order)
    await engine()
    return order


async def issue_refund(api: Any, headers: dict[str, str], order_id: str) -> dict[str, Any]:
    """A refund of the whole payment, issued by someone who may (its answer carries the claim link)."""
    resp = await api.post(f"/v1/orders/{order_id}/refunds", json={"variant": "crypto_paid"}, headers=headers)
    assert resp.status == 201, await resp.text()
    return dict(await resp.json())


@pytest.fixture
async def notifier(chain_settings: Settings, db: Any) -> AsyncIterator[None]:
    """The notification fan-out, running on a consumer group of its own from the topics' ends (in-app
    notifications only: no mail server or push key is configured)."""
    settings = msgspec.structs.replace(chain_settings, notification_group=f"test-{uuid.uuid4().hex}")
    await group_at_end(settings.kafka_servers, settings.notification_group, NOTIFIED_TOPICS)
    stop = asyncio.Event()
    task = asyncio.create_task(Notifier(settings, db).run(stop))
    yield
    stop.set()
    await asyncio.wait([task], timeout=15)
