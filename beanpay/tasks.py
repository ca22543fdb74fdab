"""Supervised side tasks: a service's loops run in one task group, and if one dies the whole
service stops and says which, instead of limping on (a dead LISTEN loop means no more wake-ups)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import structlog

log = structlog.get_logger("tasks")


class TaskDied(Exception):
    def __init__(self, name: str, error: BaseException) -> None:
        super().__init__(f"{name} died: {error!r}")
        self.name, self.error = name, error


async def supervise(tasks: dict[str, Coroutine[Any, Any, None]]) -> None:
    """Run the named coroutines until all return; the first that raises cancels the others and is
    re-raised as TaskDied (with the task's name)."""
    running: dict[asyncio.Task[None], str] = {asyncio.create_task(coro, name=name): name
                                              for name, coro in tasks.items()}
    try:
        pending = set(running)
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                if not task.cancelled() and (error := task.exception()) is not None:
                    log.error("task died; stopping the service", task=running[task], error=repr(error))
                    raise TaskDied(running[task], error) from error
    finally:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
