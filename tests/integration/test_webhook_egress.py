"""Webhooks reach public addresses only (prod): private URLs are refused at registration, and a name
that resolves to a private address, or an address spelled oddly, is refused when sent, before any
connection, so nothing of a loopback service ever shows in the merchant's delivery log."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
import pytest
from aiohttp import web

from beanpay.config import Settings
from beanpay.engine.webhooks.sender import Due, WebhookSender
from tests.conftest import Tokens
from tests.integration.helpers import make_shop

ISSUE_URLS = ["http://127.1/", "http://2130706433/", "http://0x7f000001/", "http://0177.0.0.1/", "http://0/",
              "http://localhost./", "http://shop.localhost/", "http://169.254.169.254/latest/meta-data/",
              "http://[::1]/", "http://10.0.0.8/hook"]


class Loopback:
    """A service on 127.0.0.1 that must never be reached; counts what reaches it."""

    def __init__(self, status: int = 200, location: str | None = None) -> None:
        self.hits = 0
        self.status, self.location = status, location

    async def handle(self, request: web.Request) -> web.Response:
        self.hits += 1
        headers = {"Location": self.location} if self.location else None
        return web.Response(status=self.status, text="internal admin page", headers=headers)


@pytest.fixture
async def loopback(aiohttp_server) -> Any:  # type: ignore[no-untyped-def]
    async def start(status: int = 200, location: str | None = None) -> tuple[Loopback, int]:
        service = Loopback(status, location)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", service.handle)
        server = await aiohttp_server(app, host="127.0.0.1")
        return service, server.port

    return start


async def test_registration_refuses_private_receivers_in_prod(settings: Settings, aiohttp_client,  # type: ignore[no-untyped-def]
                                                              tokens: Tokens) -> None:
    from beanpay.api.app import init_app

    api = await aiohttp_client(init_app(msgspec.structs.replace(settings, webhook_allow_private=False)))
    shop = await make_shop(api, tokens)
    for url in ISSUE_URLS:
        resp = await api.post(f"/v1/shops/{shop['id']}/webhooks", json={"url": url, "event_types": ["*"]},
                              headers=tokens.operator)
        body = await resp.json()
        assert resp.status == 422 and body["error"]["fields"][0]["field"] == "url", (url, body)
    ok = await api.post(f"/v1/shops/{shop['id']}/webhooks", json={"url": "https://hooks.example.com/x",
                                                                  "event_types": ["*"]}, headers=tokens.operator)
    assert ok.status == 201


def _due(url: str) -> Due:
    return Due(id=uuid.uuid4(), event_id=uuid.uuid4(), body='{"type":"order.paid"}', attempts=1, url=url,
               secret="whsec_" + "A" * 32, enabled=True)


async def test_a_name_or_spelling_that_reaches_loopback_is_refused_when_sent(settings: Settings, db: Any,
                                                                             loopback: Any) -> None:
    service, port = await loopback()
    # URLs that got past registration (DNS changed later, or rows from before the check)
    urls = [f"http://localhost:{port}/h", f"http://0x7f000001:{port}/h", f"http://2130706433:{port}/h",
            f"http://127.0.0.1:{port}/h", f"http://[::ffff:127.0.0.1]:{port}/h"]
    prod = WebhookSender(msgspec.structs.replace(settings, webhook_allow_private=False), db)
    async with prod.session() as session:
        for url in urls:
            outcome = await prod.deliver(session, _due(url))
            assert outcome.code is None and (outcome.error or "").startswith("refused"), (url, outcome)
            assert "internal admin page" not in (outcome.error or "")
    assert service.hits == 0
    # the same requests do reach it where private receivers are allowed (dev): the check is what refused
    dev = WebhookSender(msgspec.structs.replace(settings, webhook_allow_private=True), db)
    async with dev.session() as session:
        outcome = await dev.deliver(session, _due(f"http://localhost:{port}/h"))
    assert outcome.code == 200 and service.hits == 1


async def test_redirects_are_not_followed(settings: Settings, db: Any, loopback: Any) -> None:
    target, target_port = await loopback()
    hop, hop_port = await loopback(302, f"http://127.0.0.1:{target_port}/admin")
    sender = WebhookSender(msgspec.structs.replace(settings, webhook_allow_private=True), db)
    async with sender.session() as session:
        outcome = await sender.deliver(session, _due(f"http://127.0.0.1:{hop_port}/h"))
    assert hop.hits == 1 and target.hits == 0
    assert outcome.code == 302 and outcome.status != "succeeded"
