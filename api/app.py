"""The aiohttp application: middlewares, routes, and the resources opened at start-up."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import structlog
from aiohttp import web
from opentelemetry.trace import StatusCode

from beanpay import db, tracing
from beanpay.api import (
    api_keys,
    auth,
    carts,
    claims,
    favorites,
    health,
    invoices,
    ledger,
    lightning,
    members,
    menus,
    notifications,
    orders,
    prices,
    products,
    shop_events,
    shops,
    supplies,
    webhooks,
)
from beanpay.api.accounts.oidc import Verifier
from beanpay.api.cache import Cache
from beanpay.api.custody import payouts, refunds, wallets
from beanpay.api.errors import from_exception
from beanpay.api.feed import FEED, Feed
from beanpay.api.http import CLIENT_REQUEST_ID, REQUEST_ID, Handler, client_request_id
from beanpay.api.metrics import observe_request
from beanpay.api.pages import checkout, console, receipts, refund_claims, staff, static
from beanpay.api.ratelimit import Limiter, parse_networks
from beanpay.api.routing import Route, install
from beanpay.api.state import BTC_ACCOUNT, BTC_RPC, CACHE, LIMITER, OIDC, POOL, RATES, SETTINGS, TRUSTED_PROXIES
from beanpay.chains.bitcoin.addresses import Bip84Account
from beanpay.chains.bitcoin.rpc import BitcoinRpc
from beanpay.config import Settings
from beanpay.engine.prices.service import RateService

log = structlog.get_logger("api")

ROUTE_TABLES = (shops.routes, shop_events.routes, products.routes, menus.routes, supplies.routes, prices.routes,
                orders.routes, carts.routes, favorites.routes, notifications.routes,
                invoices.routes, lightning.routes,
                claims.routes, ledger.routes, wallets.routes, refunds.routes, payouts.routes, webhooks.routes,
                auth.routes, members.routes, api_keys.routes, health.routes)


def all_routes() -> list[Route]:
    return [r for table in ROUTE_TABLES for r in table.routes]


# request ids need to be unique, not secret: a random prefix per process and a counter (os.urandom per
# request, a system call, was a tenth of the CPU of a cached menu read)
_ID_PREFIX = os.urandom(6).hex()
_ids = itertools.count(1)


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Request id, access log, metrics, and the error shape for anything that escapes a handler."""
    # the server names every request itself; a client's X-Request-Id is a label kept apart (api/http.py)
    request_id = f"{_ID_PREFIX}{next(_ids):012x}"
    request[REQUEST_ID] = request_id
    client_id = client_request_id(request)
    if client_id is not None:
        request[CLIENT_REQUEST_ID] = client_id
    route = request.match_info.route.resource.canonical if request.match_info.route.resource else "unmatched"
    started = time.perf_counter()
    if tracing.enabled:
        response = await _traced(request, handler, route, request_id)
    else:
        response = await _answer(request, handler)
    elapsed = time.perf_counter() - started
    observe_request(request.method, route, response.status, elapsed)
    response.headers["X-Request-Id"] = request_id
    if client_id is not None:
        response.headers["X-Client-Request-Id"] = client_id
    if response.status >= 500 or elapsed > 0.5:
        log.warning("request", method=request.method, route=route, status=response.status,
                    ms=round(elapsed * 1000, 1), request_id=request_id, client_request_id=client_id)
    return response


async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except Exception as exc:  # every failure leaves as a JSON error, never a bare 500 page
        return from_exception(exc)


async def _traced(request: web.Request, handler: Handler, route: str, request_id: str) -> web.StreamResponse:
    """The request as a server span (continuing a caller's traceparent); what it writes carries the span."""
    with tracing.tracer.start_as_current_span(
            f"{request.method} {route}", context=tracing.from_headers(request.headers), kind=tracing.SERVER,
            attributes={"http.request.method": request.method, "http.route": route,
                        "beanpay.request_id": request_id}) as span:
        response = await _answer(request, handler)
        span.set_attribute("http.response.status_code", response.status)
        if response.status >= 500:
            span.set_status(StatusCode.ERROR)
        return response


def init_app(settings: Settings) -> web.Application:
    app = web.Application(middlewares=[observe], client_max_size=512 * 1024)
    app[SETTINGS] = settings
    app[TRUSTED_PROXIES] = parse_networks(settings.trusted_proxies)
    app.cleanup_ctx.append(_resources)
    install(app, all_routes())
    checkout.install(app)
    receipts.install(app)
    staff.install(app)
    refund_claims.install(app)
    console.install(app)
    static.install(app)
    app[health.OPENAPI_DOC] = health.build_openapi(all_routes())
    return app


async def _resources(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    app[POOL] = await db.create_pool(settings)
    warming = asyncio.create_task(app[POOL].warm(settings.db_pool_min), name="pool-warm-up")
    app[CACHE] = Cache(settings.redis_dsn, timeout=settings.redis_timeout_seconds,
                       retry_after=settings.redis_retry_after_seconds)
    await app[CACHE].start()
    app[RATES] = RateService(settings)
    app[LIMITER] = Limiter(settings.redis_dsn, timeout=settings.redis_timeout_seconds,
                           retry_after=settings.redis_retry_after_seconds,
                           namespace=urlsplit(settings.dsn).path.lstrip("/"))  # the deployment's database
    app[OIDC] = Verifier(settings.oidc_issuers, leeway=settings.oidc_clock_skew_seconds,
                         refresh_seconds=settings.oidc_jwks_refresh_seconds)
    account: Bip84Account | None = None
    if settings.btc_account_xpub:
        account = Bip84Account(settings.btc_account_xpub, settings.btc_network)
    app[BTC_ACCOUNT] = account
    app[BTC_RPC] = BitcoinRpc(settings.btc_rpc, settings.btcd_rpc_user, settings.btcd_rpc_password or "")
    app[FEED] = Feed(settings, app[POOL])
    yield
    await app[FEED].close()
    warming.cancel()
    await app[BTC_RPC].close()
    await app[RATES].close()
    await app[OIDC].close()
    await app[LIMITER].close()
    await app[CACHE].close()
    await app[POOL].close()
