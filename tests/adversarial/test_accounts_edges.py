"""What anyone can send at the edge: a request id of their choosing that the audit log then records as the
server's, and a flood of readiness checks, each of which took a database connection and opened a Kafka
connection."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from beanpay.config import Settings
from tests.conftest import Tokens
from tests.harness.accounts import make_app


async def test_a_client_request_id_is_never_the_audit_request_id(settings: Settings, aiohttp_client: Any,
                                                                 tokens: Tokens, db: Any) -> None:
    """Attack: an operator's request (or anyone's) carries `X-Request-Id` naming another request, or text
    meant to mislead whoever reads the audit. Must hold: every audit row carries the server's own request id
    (the one answered in `X-Request-Id`); a client's id that fits a strict pattern is kept apart as the
    client's, anything else is dropped."""
    api = await make_app(settings, aiohttp_client, rate_limits=False)

    async def shop_made(request_id: str) -> tuple[Any, Any]:
        resp = await api.post("/v1/shops", json={"name": "Audited", "address": "1 Lane"},
                              headers={**tokens.operator, "X-Request-Id": request_id})
        assert resp.status == 201, await resp.text()
        row = await db.fetchval("SELECT to_jsonb(a) FROM audit_log a WHERE action = 'shop.create' AND entity_id = $1",
                                (await resp.json())["id"])
        return resp, json.loads(row)

    borrowed = "a7c1f0d2-0b47-4a0e-9a55-3f7e0c1d2e3f"
    resp, row = await shop_made(borrowed)
    assert row["request_id"] != borrowed and row["request_id"] == resp.headers["X-Request-Id"]
    assert row.get("client_request_id") == borrowed

    forged = "op=approve payout=all; by=ceo"
    resp, row = await shop_made(forged)
    assert row["request_id"] == resp.headers["X-Request-Id"] and row.get("client_request_id") is None
    assert forged not in resp.headers.get("X-Client-Request-Id", "")


class Broker:
    """A TCP listener standing in for Kafka that counts the connections opened to it."""

    def __init__(self) -> None:
        self.accepted = 0
        self.server: asyncio.Server | None = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        writer.close()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0, family=socket.AF_INET)
        return int(self.server.sockets[0].getsockname()[1])


@pytest.fixture
async def broker() -> AsyncIterator[tuple[Broker, int]]:
    found = Broker()
    port = await found.start()
    yield found, port
    assert found.server is not None
    found.server.close()
    await found.server.wait_closed()


async def test_a_readiness_flood_costs_a_handful_of_checks(settings: Settings, aiohttp_client: Any,
                                                           broker: tuple[Broker, int]) -> None:
    """Attack: 200 readiness checks at once (the route is public and not rate-limited), each taking a
    database connection and opening a Kafka connection. Must hold: callers share the check in flight and its
    verdict for about a second, so the flood opens at most a handful of connections; a second later the
    verdict is fresh again."""
    counter, port = broker
    api = await make_app(settings, aiohttp_client, kafka_bootstrap=f"127.0.0.1:{port}")
    answers = await asyncio.gather(*(api.get("/readyz") for _ in range(200)))
    assert [a.status for a in answers] == [200] * 200
    assert {(await a.json())["kafka"] for a in answers} == {"reachable"}
    assert counter.accepted <= 3, f"{counter.accepted} Kafka connections for 200 readiness checks"
    await asyncio.sleep(1.2)
    assert (await api.get("/readyz")).status == 200
    assert 1 <= counter.accepted <= 4
