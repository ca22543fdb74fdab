"""Waking a worker on Postgres NOTIFY, with polling as the fallback."""

from __future__ import annotations

import asyncio
import contextlib
import random

import asyncpg
import structlog

from beanpay.db import TRANSIENT

log = structlog.get_logger("listen")

KEEPALIVE_SECONDS = 5.0


async def listen(dsn: str, channel: str, wake: asyncio.Event, stop: asyncio.Event) -> None:
    """LISTEN on a connection of its own, reconnecting with backoff for as long as PostgreSQL is away;
    a NOTIFY lost meanwhile costs the worker one poll interval. Returns when `stop` is set."""
    backoff = 0.5
    while not stop.is_set():
        try:
            conn: asyncpg.Connection = await asyncpg.connect(dsn, timeout=10)
            try:
                await conn.add_listener(channel, lambda *_: wake.set())
                wake.set()  # anything sent while we were away: look now
                backoff = 0.5
                while not stop.is_set() and not conn.is_closed():
                    await sleep(stop, KEEPALIVE_SECONDS)
                    await conn.execute("SELECT 1")  # keep-alive: notices a dead connection
            finally:
                with contextlib.suppress(*TRANSIENT):
                    async with asyncio.timeout(5):
                        await conn.close()
        except (*TRANSIENT, asyncpg.PostgresError) as exc:
            log.warning("listener lost its connection; reconnecting", channel=channel, error=repr(exc),
                        retry_in=round(backoff, 1))
            await sleep(stop, backoff)
            backoff = min(backoff * 2, 10.0) * random.uniform(0.8, 1.2)


async def wait_event(event: asyncio.Event, seconds: float) -> None:
    """Wait until `event` is set or `seconds` pass. asyncio.timeout, not wait_for: on Python 3.11 wait_for
    swallows a cancellation that races the inner await finishing, and a cancelled service then never stops."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()


async def sleep(stop: asyncio.Event, seconds: float) -> None:
    """Sleep, but wake at once when `stop` is set."""
    await wait_event(stop, seconds)


async def wait_wake(wake: asyncio.Event, seconds: float) -> None:
    """Wait for a wake-up (or `seconds`). The caller clears `wake` before it looks for work, not here:
    a NOTIFY that arrived while it worked must still wake this wait, or that work waits a whole poll."""
    await wait_event(wake, seconds)


class Backoff:
    """Exponential backoff with jitter for a loop that retries while a dependency is away."""

    def __init__(self, first: float = 0.5, cap: float = 10.0) -> None:
        self.first, self.cap = first, cap
        self.delay = first

    def reset(self) -> None:
        self.delay = self.first

    async def wait(self, stop: asyncio.Event) -> None:
        await sleep(stop, self.delay)
        self.delay = min(self.delay * 2, self.cap) * random.uniform(0.8, 1.2)
