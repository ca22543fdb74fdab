"""Rate limits: one budget shared by every API process through Redis, per address and per principal, and
open (loudly) when Redis does not answer."""

from __future__ import annotations

import ipaddress
import secrets
import uuid
from typing import Any
from unittest import mock

import msgspec
import structlog
from aiohttp.test_utils import make_mocked_request

from beanpay.api.accounts.local_counts import LocalCounts
from beanpay.api.ratelimit import FAIL_OPEN, Limiter, Pacing, Turn, client_ip, network_of, parse_networks
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


async def test_an_ipv6_network_is_one_client(settings: Settings, aiohttp_client: Any) -> None:
    """Attack: a client holding an IPv6 /64 (what one home or server is given) sends each request from another
    address in it, each with a budget of its own. Must hold: the budget is the network's; an IPv4 address
    written as IPv6 (::ffff:a.b.c.d) is that IPv4 address."""
    api = await _app(settings, aiohttp_client, rate_limit_anonymous=10)
    network = ipaddress.ip_network(f"2001:db8:{secrets.token_hex(2)}:{secrets.token_hex(2)}::/64")
    statuses = []
    for _ in range(14):
        address = str(network.network_address + secrets.randbits(64))
        statuses.append((await api.get("/v1/prices?fiat=USD", headers={"X-Forwarded-For": address})).status)
    assert statuses.count(200) == 10 and statuses.count(429) == 4, statuses
    assert network_of("::ffff:203.0.113.7") == "203.0.113.7" and network_of("203.0.113.7") == "203.0.113.7"


async def test_sign_in_counts_in_the_process_follow_the_redis_rules(settings: Settings) -> None:
    """While Redis does not answer, the sign-in throttle counts in the process (api.accounts.local_counts): the
    same rules as the Redis scripts, step by step: a network's own pace, the account's cap, the queue of the
    networks that failed, the slow start of one that did not, and what a success gives back."""
    limiter = Limiter(settings.redis_dsn, timeout=1.0, retry_after=1.0, namespace=f"parity-{uuid.uuid4().hex}")
    local = LocalCounts()
    pacing = Pacing(cap=4, free=2, first_gap=0.2, longest_gap=0.8, longest_wait=1.0, quiet=60, slow_start=0.5)
    steps = ["a", "a", "a", "a", "a", "b", "b", "a", "done b", "b"]
    try:
        last: dict[str, tuple[Turn, Turn]] = {}
        for step in steps:
            if step.startswith("done "):
                network = step.split()[1]
                in_redis, here = last[network]
                await limiter.done("someone@example.com", network, in_redis)
                local.done("someone@example.com", network, here)
                continue
            in_redis = await limiter.turn("someone@example.com", step, pacing)
            assert in_redis is not None
            here = local.turn("someone@example.com", step, pacing)
            assert (in_redis.admitted, in_redis.lane) == (here.admitted, here.lane), (step, in_redis, here)
            assert abs(in_redis.wait_seconds - here.wait_seconds) < 0.1, (step, in_redis, here)
            last[step] = (in_redis, here)
        lanes = [t.lane for t, _ in last.values()]
        assert lanes == [4, 2]  # a's last: refused in the queue; b after its success: a slow start again
        for _ in range(2):
            budget = await limiter.reserve("login-ip:parity", 2, window=60)
            assert budget is not None
            assert budget.allowed == local.reserve("login-ip:parity", 2, 60).allowed
        assert local.reserve("login-ip:parity", 2, 60).allowed is False
        refused = await limiter.reserve("login-ip:parity", 2, window=60)
        assert refused is not None and refused.allowed is False
        await limiter.refund("login-ip:parity")
        local.refund("login-ip:parity")
        again = await limiter.reserve("login-ip:parity", 2, window=60)
        assert again is not None and again.allowed and local.reserve("login-ip:parity", 2, 60).allowed
    finally:
        await limiter.close()
