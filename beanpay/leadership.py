"""One leader per job across processes: a Postgres session advisory lock held on a dedicated connection.

A second process asking for the same job waits, and takes over when the first one dies (its session
ends, so the lock goes). Leadership is never decided by beanpay itself: Postgres holds the lock."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import asyncpg
import structlog

from beanpay.db import TRANSIENT
from beanpay.listen import sleep

log = structlog.get_logger("leadership")

LOCK = "SELECT pg_try_advisory_lock(hashtext($1), hashtext($2))"  # session lock: its own connection


@contextlib.asynccontextmanager
async def leadership(dsn: str, namespace: str, job: str, stop: asyncio.Event, *,
                     poll: float = 1.0) -> AsyncIterator[asyncpg.Connection | None]:
    """Hold the job's advisory lock for the duration; wait for it while another process leads.
    Yields None if `stop` was set while waiting. Raises what connecting raised (the caller retries)."""
    conn: asyncpg.Connection = await asyncpg.connect(dsn, timeout=10)
    try:
        waiting_logged = False
        while not await conn.fetchval(LOCK, namespace, job):
            if not waiting_logged:
                log.info("another process leads this job; waiting", namespace=namespace, job=job)
                waiting_logged = True
            await sleep(stop, poll)
            if stop.is_set():
                yield None
                return
        log.info("leading", namespace=namespace, job=job)
        yield conn
    finally:
        with contextlib.suppress(*TRANSIENT):
            async with asyncio.timeout(5):
                await conn.close()  # closing the session releases the lock
