"""Liveness, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

import asyncio

from aiohttp import web

from beanpay.api import openapi
from beanpay.api.guard import public
from beanpay.api.http import json
from beanpay.api.routing import Routes
from beanpay.api.schemas import Health, Readiness, encoder
from beanpay.api.state import DRAINING, SETTINGS, cache, pool

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
    pg = "ok" if await pool(request).ping() else "unavailable"
    redis = "ok" if await cache(request).ping() else "unavailable"
    kafka = await _kafka_state(request)
    ready = pg == "ok"
    return json(Readiness(status="ready" if ready else "not_ready", postgres=pg, redis=redis, kafka=kafka),
                status=200 if ready else 503)


async def _kafka_state(request: web.Request) -> str:
    host, _, port = request.app[SETTINGS].kafka_servers.split(",")[0].rpartition(":")
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
