"""Run long-lived services (API, relay, engine, webhooks, notifications, lightning, indexers) on uvloop, in one process.

Every service and every side task is supervised: if one dies, the process logs which and why and
exits non-zero (an orchestrator restarts it) instead of limping on. Services start whether or not
PostgreSQL, Kafka or Redis are up yet, and ride through their restarts: they report not-ready
meanwhile, on the API's /readyz or, for the other services, on an ops endpoint at BEANPAY_METRICS_PORT
(/healthz, /readyz, /metrics).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any

import structlog
import uvloop
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from beanpay import db, gc_tuning, tracing
from beanpay.config import Settings
from beanpay.tasks import TaskDied, supervise

log = structlog.get_logger("services")

Check = Callable[[], Awaitable[bool]]


def run_services(settings: Settings, wanted: Iterable[str]) -> int:
    gc_tuning.tune()
    wanted = tuple(wanted)
    # traces name the service that made each span: one service per process in production
    tracing.configure(settings, wanted[0] if len(wanted) == 1 else "all")
    try:
        return uvloop.run(_main(settings, wanted))
    finally:
        tracing.shutdown()


async def _main(settings: Settings, wanted: tuple[str, ...]) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    pool = await db.create_pool(settings)  # connects lazily: the database may come up later
    services: dict[str, Coroutine[Any, Any, None]] = {}
    checks: dict[str, Check] = {}
    degraded: dict[str, Callable[[], dict[str, str]]] = {}  # what works, but not fully (reported, still ready)
    runner: web.AppRunner | None = None
    if "api" in wanted:
        from beanpay.api.app import init_app
        from beanpay.api.server import runner as api_runner
        from beanpay.api.state import DRAINING

        app = init_app(settings)
        draining = app[DRAINING] = asyncio.Event()
        runner = api_runner(app, settings)
        await runner.setup()
        await web.TCPSite(runner, settings.api_host, settings.api_port, backlog=4096).start()
        log.info("api listening", host=settings.api_host, port=settings.api_port)
        checks["api"] = _ready(pool, lambda: True)
    if "relay" in wanted:
        from beanpay.events.relay import Relay

        relay = Relay(settings, pool)
        services["relay"] = relay.run(stop)
        checks["relay"] = _ready(pool, lambda: relay.ready)
    if "engine" in wanted:
        from beanpay.engine.prices.service import RateService
        from beanpay.engine.worker import Engine

        engine = Engine(settings, pool, RateService(settings))
        services["engine"] = engine.run(stop)
        checks["engine"] = _ready(pool, lambda: not engine.failing)
    if "webhooks" in wanted:
        from beanpay.engine.webhooks.fanout import Fanout
        from beanpay.engine.webhooks.sender import WebhookSender

        fanout, sender = Fanout(settings, pool), WebhookSender(settings, pool)
        services["webhook-fanout"] = fanout.run(stop)
        services["webhook-sender"] = sender.run(stop)
        checks["webhooks"] = _ready(pool, lambda: fanout.connected and not sender.failing)
    if "notify" in wanted:
        from beanpay.engine.notifications.fanout import Notifier
        from beanpay.engine.notifications.sender import NotificationSender

        notifier, notification_sender = Notifier(settings, pool), NotificationSender(settings, pool)
        services["notification-fanout"] = notifier.run(stop)
        services["notification-sender"] = notification_sender.run(stop)
        checks["notify"] = _ready(pool, lambda: notifier.connected and not notification_sender.failing)
    if "lightning" in wanted:
        from beanpay.engine.lightning.watcher import LightningWatcher

        watcher = LightningWatcher(settings, pool)
        services["lightning"] = watcher.run(stop)
        checks["lightning"] = _ready(pool, lambda: True)
        degraded["lightning"] = lambda: dict(watcher.problems)
    for name in wanted:
        if name.startswith("index-"):  # the service of one chain's indexer, as beanpay.services names it
            from beanpay.indexer import registry
            from beanpay.indexer.follower import Follower

            chain = name.removeprefix("index-")
            follower = Follower(registry.policy(settings, chain), pool, registry.source(settings, chain))
            services[name] = follower.run(settings.dsn, stop)
            checks[name] = _ready(pool, lambda: True)
    # metrics are served on their own port, never next to the API: what operators watch is not public
    ops = await _ops_server(settings, checks, degraded) if settings.metrics_port is not None and checks else None
    code = 0
    try:
        await supervise({**services, "signals": _until(stop)})
    except TaskDied as died:
        log.error("service died; stopping", service=died.name, error=repr(died.error))
        code = 1
    finally:
        stop.set()
        if runner is not None:
            if code == 0 and settings.api_drain_seconds > 0:  # a clean stop: leave the balancer time to see it
                draining.set()
                log.info("draining", seconds=settings.api_drain_seconds)
                await asyncio.sleep(settings.api_drain_seconds)
            await runner.cleanup()
        if ops is not None:
            await ops.cleanup()
        await pool.close()
    return code


async def _until(stop: asyncio.Event) -> None:
    await stop.wait()


def _ready(pool: db.Pool, healthy: Callable[[], bool]) -> Check:
    async def check() -> bool:
        return healthy() and await pool.ping()

    return check


async def _ops_server(settings: Settings, checks: dict[str, Check],
                      degraded: dict[str, Callable[[], dict[str, str]]]) -> web.AppRunner:
    """/healthz (the process is up), /readyz (its dependencies answer), /metrics (Prometheus)."""

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(request: web.Request) -> web.Response:
        results = {name: await check() for name, check in checks.items()}
        ready = all(results.values())
        body: dict[str, Any] = {"status": "ready" if ready else "not_ready", "services": results}
        problems = {name: found for name, report in degraded.items() if (found := report())}
        if problems:  # e.g. a Lightning node down: checkouts fall back to on chain, the process is still ready
            body["degraded"] = problems
        return web.json_response(body, status=200 if ready else 503)

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.api_host, settings.metrics_port).start()
    return runner
