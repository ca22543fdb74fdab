"""Waking a worker on Postgres NOTIFY, with polling as the fallback."""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
import structlog

log = structlog.get_logger("listen")


async def listen(dsn: str, channel: str, wake: asyncio.Event, stop: asyncio.Event) -> None:
    """LISTEN on its own connection, reconnecting; a lost NOTIFY only costs the worker one poll interval."""
    while not stop.is_set():
        try:
            conn: asyncpg.Connection = await asyncpg.connect(dsn)
            try:
                await conn.add_listener(channel, lambda *_: wake.set())
                while not stop.is_set() and not conn.is_closed():
                    await asyncio.sleep(5)
                    await conn.execute("SELECT 1")  # keep-alive, notices a dead connection
            finally:
                await conn.close()
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("listener lost its connection", channel=channel, error=repr(exc))
            await sleep(stop, 2)


async def sleep(stop: asyncio.Event, seconds: float) -> None:
    """Sleep, but wake at once when `stop` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def wait_wake(wake: asyncio.Event, seconds: float) -> None:
    wake.clear()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(wake.wait(), seconds)
