"""Waiting on an event never swallows the cancellation of the task that waits."""

import asyncio

import pytest

from beanpay.listen import sleep


async def test_a_sleep_cancelled_as_its_event_is_set_is_still_cancelled() -> None:
    # On Python 3.11 asyncio.wait_for returns normally when the task is cancelled in the same turn the awaited
    # event fires: a loop sleeping on it then runs on, and a service that was cancelled never stops.
    stop = asyncio.Event()
    sleeper = asyncio.create_task(sleep(stop, 60))
    await asyncio.sleep(0)  # the sleeper now waits on the event
    stop.set()
    sleeper.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sleeper


async def test_a_sleep_ends_at_its_time_or_when_stopped() -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    await sleep(asyncio.Event(), 0.05)
    assert loop.time() - started >= 0.05
    stop = asyncio.Event()
    stop.set()
    started = loop.time()
    await sleep(stop, 60)
    assert loop.time() - started < 1
