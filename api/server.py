"""The API's HTTP server: aiohttp's, with bounds on how long a client may take to send its request,
and protocol errors (an oversized header, Content-Length with Transfer-Encoding) answered in the
API's JSON error shape instead of aiohttp's plain text.

- Headers: a connection whose request has started arriving and has not reached its handler within
  `api_header_timeout_seconds` is closed (a client trickling its headers). The handler notes when the
  first byte of a request arrived; a sweep once a second closes the late ones (a timer per request
  would cost more than the limiter).
- Idle: aiohttp closes a kept-alive connection that sends nothing for `api_idle_timeout_seconds`.
- Bodies are read under `api_body_timeout_seconds` (api.body).

These need a subclass of aiohttp's request handler, plugged in through its runner: private hooks,
pinned by the lock file, and checked by tests that speak raw HTTP to a real server.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from beanpay.api.errors import error_response
from beanpay.config import Settings

log = structlog.get_logger("api")


class _Handler(RequestHandler):
    __slots__ = ("_request_since",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._request_since: float | None = None  # when the first byte of a request not yet handled came

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # a parsed request is queued or being handled: its headers are in; else a request is arriving
        if self._messages or self._request_in_progress:
            self._request_since = None
        elif self._request_since is None:
            self._request_since = self._loop.time()

    def late(self, now: float, limit: float) -> bool:
        return self._request_since is not None and now - self._request_since > limit

    def handle_error(self, request: BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if status >= 500:
            return super().handle_error(request, status, exc, message)
        log.info("malformed request refused", status=status, reason=(message or "")[:200])
        if request.writer.output_size > 0:
            raise ConnectionError("a response was already started")
        response = error_response(status, "malformed_request", (message or "malformed request")[:300])
        response.force_close()
        return response


class _Server(web.Server):
    def __call__(self) -> RequestHandler:
        return _Handler(self, loop=self._loop, **self._kwargs)


class ApiRunner(web.AppRunner):
    def __init__(self, app: web.Application, *, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._header_timeout = header_timeout
        self._sweeper: asyncio.Task[None] | None = None

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _Server  # same state, our request handler: aiohttp has no public hook for it
        self._sweeper = asyncio.create_task(self._sweep(server), name="slow-request-sweeper")
        return server

    async def _sweep(self, server: web.Server) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(min(1.0, self._header_timeout / 2))
            now = loop.time()
            for handler in server.connections:
                if isinstance(handler, _Handler) and handler.late(now, self._header_timeout):
                    log.info("slow request closed", after_seconds=self._header_timeout)
                    handler.force_close()
                    if handler.transport is not None:
                        handler.transport.close()

    async def cleanup(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        await super().cleanup()


def runner(app: web.Application, settings: Settings, **kwargs: Any) -> ApiRunner:
    # lingering: after answering a request whose body was not read, aiohttp reads on for this long before
    # closing (10 s by default, a slow client's gift); 1 s lets a client that is still sending see the answer
    return ApiRunner(app, header_timeout=settings.api_header_timeout_seconds, access_log=None,
                     keepalive_timeout=settings.api_idle_timeout_seconds, lingering_time=1.0, **kwargs)
