"""The API's HTTP server: aiohttp's, with a bound on how long a client may take to send its request,
and protocol errors (an oversized header, Content-Length with Transfer-Encoding) answered in the
API's JSON error shape instead of aiohttp's plain text.

aiohttp closes a connection that has not completed a request within its keep-alive timeout (the
timer starts when the connection opens), so `api_header_timeout_seconds` bounds a client trickling
its headers; bodies are read under `api_body_timeout_seconds` (api.body). The JSON errors need a
subclass of aiohttp's request handler, plugged in through its runner: private hooks, pinned by the
lock file, and checked by tests that speak raw HTTP to a real server.
"""

from __future__ import annotations

from typing import Any

import structlog
from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from beanpay.api.errors import error_response
from beanpay.config import Settings

log = structlog.get_logger("api")


class _Handler(RequestHandler):
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
    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _Server  # same state, our request handler: aiohttp has no public hook for it
        return server


def runner(app: web.Application, settings: Settings, **kwargs: Any) -> ApiRunner:
    # lingering: after answering a request whose body was not read, aiohttp reads on for this long before
    # closing (10 s by default, a slow client's gift); 1 s lets a client that is still sending see the answer
    return ApiRunner(app, access_log=None, keepalive_timeout=settings.api_header_timeout_seconds, lingering_time=1.0,
                     **kwargs)
