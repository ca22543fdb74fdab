"""The API's edges, spoken to in raw HTTP on a real server: slow clients are closed, a client that
leaves mid-body is no error, non-JSON writes get a 415, and protocol errors leave in the API's shape."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
import structlog

from beanpay.config import Settings
from tests.bench.local import free_port

TIMEOUT = 1.0


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[int]:
    from aiohttp import web

    from beanpay.api.app import init_app
    from beanpay.api.server import runner

    conf = msgspec.structs.replace(settings, api_header_timeout_seconds=TIMEOUT, api_body_timeout_seconds=TIMEOUT)
    port = free_port()
    made = runner(init_app(conf), conf)
    await made.setup()
    await web.TCPSite(made, "127.0.0.1", port).start()
    yield port
    await made.cleanup()


async def exchange(port: int, raw: bytes, *, wait: float = 5.0) -> tuple[int, dict[str, Any] | None, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), wait)
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head else 0
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    return status, parsed, head


async def test_a_write_that_is_not_json_is_a_415(server: int) -> None:
    status, body, _ = await exchange(server, b"POST /v1/orders HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                                             b"Content-Length: 2\r\nConnection: close\r\n\r\nhi")
    assert status == 415 and body is not None and body["error"]["code"] == "unsupported_media_type"


async def test_clients_trickling_headers_are_closed(server: int) -> None:
    """500 clients each send half a request line and then a byte a while: all are closed after the
    header timeout (before this, they were held for aiohttp's default of an hour)."""
    started = time.monotonic()

    async def trickle() -> float:
        reader, writer = await asyncio.open_connection("127.0.0.1", server)
        writer.write(b"GET /v1/shops HTTP/1.1\r\nHost: x\r\n")
        await writer.drain()
        try:
            for _ in range(20):
                writer.write(b"X")
                await writer.drain()
                if await asyncio.wait_for(reader.read(1024), 0.3) == b"":
                    break
        except TimeoutError:
            pass
        except ConnectionError:
            pass
        closed = reader.at_eof() or writer.is_closing()
        if not closed:
            try:
                closed = await asyncio.wait_for(reader.read(), 3) == b""
            except (TimeoutError, ConnectionError):
                closed = False
        writer.close()
        return time.monotonic() - started if closed else float("inf")

    took = await asyncio.gather(*(trickle() for _ in range(500)))
    assert max(took) < TIMEOUT + 6, sorted(took)[-3:]


async def test_a_slow_body_is_a_408_and_a_vanished_client_no_error(server: int) -> None:
    head = (b"POST /v1/orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n"
            b"Connection: close\r\n\r\n")
    status, body, _ = await exchange(server, head + b'{"shop_id":')
    assert status == 408 and body is not None and body["error"]["code"] == "request_timeout"

    with structlog.testing.capture_logs() as logs:
        _, writer = await asyncio.open_connection("127.0.0.1", server)
        writer.write(head + b'{"shop')
        await writer.drain()
        writer.close()
        await asyncio.sleep(0.3)
    assert not [e for e in logs if e.get("log_level") in ("error", "critical")], logs


@pytest.mark.parametrize("raw", [
    b"GET /v1/shops HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 10_000 + b"\r\n\r\n",
    b"POST /v1/shops HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"GET /v1/shops HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
])
async def test_protocol_errors_leave_in_the_api_shape(server: int, raw: bytes) -> None:
    status, body, head = await exchange(server, raw)
    assert 400 <= status < 500, head
    assert body is not None and body["error"]["code"] == "malformed_request", head


async def test_an_idle_kept_alive_connection_outlives_the_header_timeout(server: int) -> None:
    """The header timeout counts from a request's first byte, not from the last response: a client that
    keeps its connection open between requests (10,000 of them in the benchmark) is not dropped."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server)
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    for _ in range(2):
        writer.write(request)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200")
        length = int(next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")).split(b":")[1])
        await reader.readexactly(length)
        await asyncio.sleep(TIMEOUT * 2.5)
    writer.close()
