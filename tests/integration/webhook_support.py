"""Fixtures for tests that receive webhooks: a merchant's endpoint that verifies every signature, and the
delivery services (relay, fan-out, sender) running in the test's process."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from beanpay.deploy.endpoint import Endpoint
from beanpay.engine.webhooks.fanout import TOPICS, Fanout
from beanpay.engine.webhooks.sender import WebhookSender
from beanpay.events.relay import Relay
from tests.bench.local import group_at_end


class Receiver:
    """A merchant's endpoint: verifies each request's signature, answers `status`, counts message ids."""

    def __init__(self, secret: str = "") -> None:
        self.secret = secret
        self.status = 200
        self.seen: Counter[str] = Counter()
        self.types: dict[str, str] = {}
        self.payloads: dict[str, dict[str, Any]] = {}  # webhook-id -> the verified body
        self.bad_signatures = 0
        self.endpoint = Endpoint(self.handle, "/hooks", access_log=True)
        self.port, self.url = self.endpoint.port, self.endpoint.url

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            payload = Webhook(self.secret).verify(body, dict(request.headers))
        except WebhookVerificationError:
            self.bad_signatures += 1
            return web.Response(status=400)
        if self.status == 200:
            self.seen[request.headers["webhook-id"]] += 1
            self.types[request.headers["webhook-id"]] = payload["type"]
            self.payloads[request.headers["webhook-id"]] = payload
        return web.Response(status=self.status)

    async def start(self) -> None:
        await self.endpoint.start()

    async def stop(self) -> None:
        await self.endpoint.stop()


@pytest.fixture
async def delivery_services(chain_settings, db) -> AsyncIterator[Any]:  # type: ignore[no-untyped-def]
    """start(max_attempts): relay, fan-out and sender running, with fast retries and a consumer group of
    the test's own."""
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []

    async def start(max_attempts: int) -> None:
        settings = msgspec.structs.replace(
            chain_settings, webhook_backoff_seconds=0.2, webhook_backoff_cap_seconds=0.5,
            webhook_max_attempts=max_attempts, webhook_group=f"test-{uuid.uuid4().hex}", webhook_timeout_seconds=2.0)
        await group_at_end(settings.kafka_servers, settings.webhook_group, TOPICS)
        tasks.extend([asyncio.create_task(Relay(settings, db).run(stop)),
                      asyncio.create_task(Fanout(settings, db).run(stop)),
                      asyncio.create_task(WebhookSender(settings, db).run(stop))])

    yield start
    stop.set()
    await asyncio.wait(tasks, timeout=10)
