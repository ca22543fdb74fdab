"""Every open event stream holds a connection, a task and a watch in an API process for as long as the
client likes. The attacker opens many at once: of one checkout link, of one signed-in principal, and of
many links from one address (or one IPv6 /64), all in the same instant (so a check-then-count race would let
several through the last slot), and many clients together against one process."""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
from typing import Any

import pytest

from beanpay.api import shop_events
from beanpay.api.pages import checkout
from tests.conftest import Tokens, wait_for
from tests.integration.engine_support import make_coffee_shop, place

pytest_plugins = ["tests.integration.engine_support"]


async def _open_all(api: Any, paths: list[str], headers: dict[str, str] | None = None) -> list[Any]:
    return list(await asyncio.gather(*(api.get(p, headers=headers or {}) for p in paths)))


def _admitted(responses: list[Any]) -> list[Any]:
    return [r for r in responses if r.status == 200]


async def _close(responses: list[Any]) -> None:
    for r in responses:
        r.close()


@pytest.fixture
def quick_heartbeats(monkeypatch: pytest.MonkeyPatch) -> None:
    """A closed stream's slot frees when the server next writes to it: make that soon."""
    monkeypatch.setattr(checkout, "HEARTBEAT_SECONDS", 0.3)
    monkeypatch.setattr(shop_events, "HEARTBEAT_SECONDS", 0.3)


async def test_one_checkout_link_opens_a_bounded_number_of_streams_at_once(
        api, tokens: Tokens, chain_settings, quick_heartbeats) -> None:
    """Thirty opens of one order's live stream in the same instant: exactly the per-link limit get a
    stream, the others a 429 that says why; once those close, the link streams again."""
    limit = getattr(chain_settings, "event_streams_per_holder", None)
    shop = await make_coffee_shop(api, tokens)
    order = await place(api, {}, shop, "eth", "ETH")
    path = f"/pay/{order['checkout_token']}/events"
    opened = await _open_all(api, [path] * 30)
    try:
        admitted = _admitted(opened)
        assert len(admitted) == limit, f"{len(admitted)} streams of one checkout open at once"
        refused = [r for r in opened if r.status != 200]
        assert {r.status for r in refused} == {429}
        assert "Retry-After" in refused[0].headers
    finally:
        await _close(opened)

    async def streams_again() -> bool:
        resp = await api.get(path)
        resp.close()
        return bool(resp.status == 200)

    await wait_for(streams_again, timeout=10)


async def test_one_principal_opens_a_bounded_number_of_shop_streams_at_once(
        api, tokens: Tokens, chain_settings, quick_heartbeats) -> None:
    """A staff member's credentials open the shop's live stream thirty times at once: exactly the
    per-principal limit get one."""
    limit = getattr(chain_settings, "event_streams_per_holder", None)
    shop = await make_coffee_shop(api, tokens)
    opened = await _open_all(api, [f"/v1/shops/{shop.id}/events"] * 30, shop.staff)
    try:
        assert len(_admitted(opened)) == limit, f"{len(_admitted(opened))} shop streams of one principal"
        assert {r.status for r in opened if r.status != 200} == {429}
    finally:
        await _close(opened)


async def test_one_address_opens_a_bounded_number_of_streams_whatever_it_holds(
        make_api, tokens: Tokens, quick_heartbeats) -> None:
    """Many checkout links (each under its own limit) from one address, opened at once, with a staff
    member's shop stream among them: the address's limit holds over all of them."""
    api = await make_api(event_streams_per_address=5, event_streams_per_holder=3)
    shop = await make_coffee_shop(api, tokens)
    orders = [await place(api, {}, shop, "eth", "ETH") for _ in range(8)]
    paths = [f"/pay/{o['checkout_token']}/events" for o in orders]
    opened = await _open_all(api, paths)
    try:
        assert len(_admitted(opened)) == 5
        refused = await api.get(f"/v1/shops/{shop.id}/events", headers=shop.staff)
        assert refused.status == 429
        refused.close()
    finally:
        await _close(opened)


async def _open_from(api: Any, paths: list[str], addresses: list[str]) -> list[Any]:
    return list(await asyncio.gather(*(api.get(p, headers={"X-Forwarded-For": a}) for p, a in zip(paths, addresses,
                                                                                                    strict=True))))


async def test_one_ipv6_network_is_one_address(make_api, tokens: Tokens, quick_heartbeats) -> None:
    """Attack: a client holding an IPv6 /64 (what one home or one server gets) opens each stream from another
    address in it: the per-address cap counted each /128 apart, so it never ran out. Must hold: a /64 is one
    address to the cap."""
    api = await make_api(event_streams_per_address=3, event_streams_per_holder=3, trusted_proxies=["127.0.0.1/32"])
    shop = await make_coffee_shop(api, tokens)
    orders = [await place(api, {}, shop, "eth", "ETH") for _ in range(6)]
    network = ipaddress.ip_network(f"2001:db8:{secrets.token_hex(2)}:{secrets.token_hex(2)}::/64")
    addresses = [str(network.network_address + secrets.randbits(64)) for _ in orders]
    opened = await _open_from(api, [f"/pay/{o['checkout_token']}/events" for o in orders], addresses)
    try:
        assert len(_admitted(opened)) == 3, [r.status for r in opened]
        assert {r.status for r in opened if r.status != 200} == {429}
    finally:
        await _close(opened)


async def test_a_process_holds_a_bounded_number_of_streams(make_api, tokens: Tokens, quick_heartbeats) -> None:
    """Attack: many clients (a botnet: each address under its own cap) open streams until the process runs out
    of connections, tasks and memory. Must hold: a process holds at most BEANPAY_EVENT_STREAMS_PER_PROCESS
    streams; beyond, a 503 with Retry-After (the load balancer or the client goes elsewhere)."""
    api = await make_api(event_streams_per_process=4, trusted_proxies=["127.0.0.1/32"])
    shop = await make_coffee_shop(api, tokens)
    orders = [await place(api, {}, shop, "eth", "ETH") for _ in range(7)]
    addresses = [f"198.18.{secrets.randbelow(256)}.{i + 1}" for i in range(len(orders))]
    opened = await _open_from(api, [f"/pay/{o['checkout_token']}/events" for o in orders], addresses)
    try:
        assert len(_admitted(opened)) == 4, [r.status for r in opened]
        refused = [r for r in opened if r.status != 200]
        assert {r.status for r in refused} == {503}
        assert int(refused[0].headers["Retry-After"]) >= 1
    finally:
        await _close(opened)
