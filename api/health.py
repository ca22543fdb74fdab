"""Liveness, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

import asyncio
import time
import weakref

from aiohttp import web

from beanpay.api import openapi
from beanpay.api.guard import public
from beanpay.api.http import json
from beanpay.api.routing import Routes
from beanpay.api.schemas import Health, Readiness, encoder
from beanpay.api.state import CACHE, DRAINING, POOL, SETTINGS

routes = Routes()
OPENAPI_DOC = web.AppKey("openapi", bytes)


@routes.add("GET", "/healthz", summary="The process is up", tag="ops", response=Health,
            policy=public(limited=False))
async def healthz(request: web.Request) -> web.Response:
    return json(Health(status="ok"))


@routes.add("GET", "/readyz", summary="Postgres answers (required); Redis and Kafka reported", tag="ops",
            response=Readiness, policy=public(limited=False), errors=(503,))
async def readyz(request: web.Request) -> web.Response:
    draining = request.app.get(DRAINING)
    if draining is not None and draining.is_set():  # a load balancer stops sending here; requests still served
        return json(Readiness(status="draining", postgres="-", redis="-", kafka="-"), status=503)
    verdict = await _checker(request.app).verdict()
    return json(verdict, status=200 if verdict.status == "ready" else 503)


class _Checker:
    """One readiness check at a time per app, its verdict shared for FRESH_FOR seconds: the route is public
    and not rate-limited (load balancers poll it), so a flood of calls must not cost a database connection
    and a Kafka connection each."""

    FRESH_FOR = 1.0

    def __init__(self, app: web.Application) -> None:
        self._app = app
        self._verdict: Readiness | None = None
        self._at = 0.0
        self._running: asyncio.Task[Readiness] | None = None

    async def verdict(self) -> Readiness:
        if self._verdict is not None and time.monotonic() - self._at < self.FRESH_FOR:
            return self._verdict
        if self._running is None:
            # a task of its own: a caller that goes away does not cancel the check the others wait on
            self._running = asyncio.create_task(self._check(), name="readiness-check")
        return await asyncio.shield(self._running)

    async def _check(self) -> Readiness:
        try:
            app = self._app
            pg = "ok" if await app[POOL].ping() else "unavailable"
            redis = "ok" if await app[CACHE].ping() else "unavailable"
            kafka = await _kafka_state(app[SETTINGS].kafka_servers)
            self._verdict = Readiness(status="ready" if pg == "ok" else "not_ready", postgres=pg, redis=redis,
                                      kafka=kafka)
            self._at = time.monotonic()
            return self._verdict
        finally:
            self._running = None


_checkers: weakref.WeakKeyDictionary[web.Application, _Checker] = weakref.WeakKeyDictionary()


def _checker(app: web.Application) -> _Checker:
    found = _checkers.get(app)
    if found is None:
        found = _checkers[app] = _Checker(app)
    return found


async def _kafka_state(servers: str) -> str:
    host, _, port = servers.split(",")[0].rpartition(":")
    try:
        async with asyncio.timeout(1):
            _, writer = await asyncio.open_connection(host, int(port))
            writer.close()
        return "reachable"
    except (OSError, TimeoutError, ValueError):
        return "unreachable"


@routes.add("GET", "/openapi.json", summary="This document", tag="ops", policy=public(limited=False))
async def openapi_json(request: web.Request) -> web.Response:
    return web.Response(body=request.app[OPENAPI_DOC], content_type="application/json")


def build_openapi(all_routes: list) -> bytes:  # type: ignore[type-arg]
    return encoder.encode(openapi.build(all_routes))
