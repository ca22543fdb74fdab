"""The one worker loop: a dependency away is ridden out (the loop says it is failing, and goes on), anything
else kills it (the supervisor then stops the process); a full batch is followed at once, a wake-up ends the
idle wait."""

from __future__ import annotations

import asyncio

import pytest

from beanpay.batchloop import BatchLoop
from beanpay.db import DatabaseUnavailable

QUICK = (0.01, 0.01)  # backoff


async def test_a_dependency_away_is_ridden_out_and_said() -> None:
    stop, seen = asyncio.Event(), []

    async def round_() -> int:
        seen.append(loop.failing)
        if len(seen) <= 2:
            raise DatabaseUnavailable("the database is away")
        stop.set()
        return 0

    loop = BatchLoop("t", round_, 10, 0.01, backoff=QUICK)
    await asyncio.wait_for(loop.run(stop), 5)
    assert seen == [False, True, True] and not loop.failing and loop.failures == 0


async def test_a_bug_kills_the_loop() -> None:
    async def round_() -> int:
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        await asyncio.wait_for(BatchLoop("t", round_, 10, 0.01).run(asyncio.Event()), 5)


async def test_a_full_batch_is_followed_at_once_and_a_wake_ends_the_idle_wait() -> None:
    stop, wake, idle, rounds = asyncio.Event(), asyncio.Event(), asyncio.Event(), []

    async def round_() -> int:
        rounds.append(asyncio.get_running_loop().time())
        if len(rounds) == 3:
            idle.set()
        if len(rounds) == 4:
            stop.set()
        return 10 if len(rounds) <= 2 else 0  # two full batches, then idle

    task = asyncio.create_task(BatchLoop("t", round_, 10, 60.0, wake=wake).run(stop))
    await asyncio.wait_for(idle.wait(), 5)
    wake.set()  # without it the idle wait would last a minute
    await asyncio.wait_for(task, 5)
    assert rounds[2] - rounds[0] < 1 and rounds[3] - rounds[2] < 1
