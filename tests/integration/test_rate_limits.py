"""Rate limits: one budget shared by every API process through Redis, per address and per principal, and
open (loudly) when Redis does not answer."""

from __future__ import annotations

import secrets
from typing import Any
from unittest import mock

import msgspec
import structlog
from aiohttp.test_utils import make_mocked_request

from beanpay.api.ratelimit import FAIL_OPEN, client_ip, parse_networks
from beanpay.config import Settings
from tests.bench.local import free_port
from tests.conftest import Tokens


async def _app(settings: Settings, aiohttp_client: Any, **overrides: Any) -> Any:
    from beanpay.api.app import init_app

    conf = msgspec.structs.replace(settings, **{"rate_limits": True, "trusted_proxies": ["127.0.0.1/32"], **overrides})
    return await aiohttp_client(init_app(conf))


async def test_two_processes_share_one_budget(settings: Settings, aiohttp_client, tokens: Tokens) -> None:  # type: ignore[no-untyped-def]
    first = await _app(settings, aiohttp_client, rate_limit_anonymous=30)
    second = await _app(settings, aiohttp_client, rate_limit_anonymous=30)
    address = {"X-Forwarded-For": f"203.0.113.{secrets.randbelow(250) + 1}"}
    statuses = [(await (first if i % 2 else second).get("/v1/prices?fiat=USD", headers=address)).status
                for i in range(40)]
    assert statuses.count(200) == 30 and statuses.count(429) == 10  # 30 a minute, across both
    # a signed-in principal has a budget of its own, not the address's
    assert (await first.get("/v1/orders", headers={**address, **tokens.header("customer")})).status == 200
    assert (await first.get("/v1/prices?fiat=USD", headers=address)).status == 429
    # X-Forwarded-For is believed from a trusted proxy only; otherwise the client is the peer itself.
    # (Checked on the address itself: an app charging 127.0.0.1's shared bucket here leased 2,000 of it and
    # starved the other tests' apps.)
    transport = mock.Mock()
    transport.get_extra_info.return_value = ("127.0.0.1", 40000)
    forwarded = make_mocked_request("GET", "/", headers=address, transport=transport)
    assert client_ip(forwarded, []) == "127.0.0.1"
    assert client_ip(forwarded, parse_networks(["127.0.0.1/32"])) == address["X-Forwarded-For"]


async def test_limits_fail_open_when_redis_is_down(settings: Settings, aiohttp_client, tokens: Tokens) -> None:  # type: ignore[no-untyped-def]
    dead = f"redis://127.0.0.1:{free_port()}/0"
    api = await _app(settings, aiohttp_client, redis_url=dead, rate_limit_anonymous=2)
    before = FAIL_OPEN._value.get()
    with structlog.testing.capture_logs() as logs:
        statuses = [(await api.get("/v1/prices?fiat=USD")).status for _ in range(5)]
    assert statuses == [200] * 5  # over the budget of 2, and still answered
    assert FAIL_OPEN._value.get() - before >= 5
    assert any(e["event"] == "rate limits fail open: Redis does not answer" for e in logs)
