"""One loop for every worker that drains work in batches: the outbox relay, the engine's settlement and its
side jobs, the webhook and notification senders.

A round does one batch and says how many it did; a full batch means more may wait, so the next round runs
at once; otherwise the loop waits for a wake-up (a Postgres NOTIFY) or its poll interval. One error policy:
the failures of a dependency the loop names (the database, Kafka, a node) are ridden out with backoff,
counted and logged, and the loop says it is failing (readiness reads it); anything else is a bug, which
kills the loop, and the supervisor (beanpay.tasks.supervise) stops the process and says which loop died,
instead of a worker limping on while its log fills with the same exception.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog
from prometheus_client import Counter

from beanpay.db import RIDE_OUT
from beanpay.listen import Backoff, sleep

log = structlog.get_logger("loops")

AWAY = Counter("beanpay_loop_dependency_failures_total",
               "Rounds a worker loop could not do because a dependency was away (ridden out with backoff)", ["loop"])


@dataclass
class BatchLoop:
    name: str
    round: Callable[[], Awaitable[int]]  # one batch; how many it did
    batch: int  # a round that did this many (or more) is followed by another at once
    poll_seconds: float  # the longest wait between rounds when idle
    wake: asyncio.Event | None = None  # set by a NOTIFY listener (or a consumer): the idle wait ends early
    away: tuple[type[BaseException], ...] = RIDE_OUT  # what a dependency's absence raises: ridden out
    on_away: Callable[[], Awaitable[None]] | None = None  # after such a failure (e.g. drop a broken producer)
    after_idle: Callable[[], Awaitable[None]] | None = None  # after an idle wait (e.g. gather a batch)
    backoff: tuple[float, float] = (0.5, 10.0)  # the first wait after a dependency failed, and the longest
    failing: bool = field(default=False, init=False)  # the last round met a dependency away
    failures: int = field(default=0, init=False)  # rounds in a row that did

    async def run(self, stop: asyncio.Event) -> None:
        backoff = Backoff(*self.backoff)
        while not stop.is_set():
            if self.wake is not None:
                self.wake.clear()  # before looking: work committed from now on ends the idle wait below
            try:
                done = await self.round()
            except self.away as exc:
                self.failing, self.failures = True, self.failures + 1
                AWAY.labels(self.name).inc()
                log.warning("a dependency is away; retrying", loop=self.name, error=repr(exc),
                            retry_in=round(backoff.delay, 1))
                if self.on_away is not None:
                    await self.on_away()
                await backoff.wait(stop)
                continue
            self.failing, self.failures = False, 0
            backoff.reset()
            if done >= self.batch:
                continue
            await self._idle(stop)
            if self.after_idle is not None:
                await self.after_idle()

    async def _idle(self, stop: asyncio.Event) -> None:
        """Wait for the poll interval, a wake-up or the stop, whichever comes first."""
        if self.wake is None:
            await sleep(stop, self.poll_seconds)
            return
        waits = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self.wake.wait())}
        try:
            await asyncio.wait(waits, timeout=self.poll_seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()
