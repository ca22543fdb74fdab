"""Run long-lived services (API, relay, engine, webhooks, indexers) on uvloop, supervised: if one dies, all stop."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterable

import structlog
import uvloop
from aiohttp import web

from beanpay import db
from beanpay.config import Settings

log = structlog.get_logger("services")


def run_services(settings: Settings, wanted: Iterable[str]) -> int:
    return uvloop.run(_main(settings, tuple(wanted)))


async def _main(settings: Settings, wanted: tuple[str, ...]) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tasks: list[asyncio.Task[None]] = []
    if settings.metrics_port is not None and wanted != ("api",):
        from prometheus_client import start_http_server

        start_http_server(settings.metrics_port, addr=settings.api_host)
    runner: web.AppRunner | None = None
    pool = None
    if "api" in wanted:
        from beanpay.api.app import init_app

        runner = web.AppRunner(init_app(settings), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, settings.api_host, settings.api_port, backlog=1024).start()
        log.info("api listening", host=settings.api_host, port=settings.api_port)
    if "relay" in wanted:
        from beanpay.events.relay import Relay

        pool = await db.create_pool(settings)
        tasks.append(asyncio.create_task(Relay(settings, pool).run(stop), name="relay"))
    if "engine" in wanted:
        from beanpay.engine.prices.service import RateService
        from beanpay.engine.worker import Engine

        pool = pool or await db.create_pool(settings)
        rates = RateService(settings)
        tasks.append(asyncio.create_task(Engine(settings, pool, rates).run(stop), name="engine"))
    if "webhooks" in wanted:
        from beanpay.engine.webhooks.fanout import run_fanout
        from beanpay.engine.webhooks.sender import Sender

        pool = pool or await db.create_pool(settings)
        tasks.append(asyncio.create_task(run_fanout(settings, pool, stop), name="webhook-fanout"))
        tasks.append(asyncio.create_task(Sender(settings, pool).run(stop), name="webhook-sender"))
    for name in wanted:
        if name.startswith("index:"):
            from beanpay.indexer import registry
            from beanpay.indexer.follower import Follower

            chain = name.split(":", 1)[1]
            pool = pool or await db.create_pool(settings)
            follower = Follower(registry.policy(settings, chain), pool, registry.source(settings, chain))
            tasks.append(asyncio.create_task(follower.run(settings.dsn, stop), name=f"index-{chain}"))
    stopper = asyncio.create_task(stop.wait(), name="stop")
    done, _ = await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
    code = 0
    for t in done:
        if t is not stopper and t.exception() is not None:
            log.error("service died; stopping", service=t.get_name(), error=repr(t.exception()))
            code = 1
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    stopper.cancel()
    if runner is not None:
        await runner.cleanup()
    if pool is not None:
        await db.close_pool(pool)
    return code
