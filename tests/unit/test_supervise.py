"""A service's loops are supervised: the first that dies stops the others and is named."""

import asyncio

import pytest

from beanpay.tasks import TaskDied, supervise


async def test_a_dying_side_task_stops_the_service_and_is_named() -> None:
    cancelled = asyncio.Event()

    async def forever() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def listener() -> None:
        await asyncio.sleep(0.01)
        raise ConnectionError("LISTEN connection gone for good")

    with pytest.raises(TaskDied) as died:
        await asyncio.wait_for(supervise({"worker": forever(), "listener": listener()}), 5)
    assert died.value.name == "listener" and isinstance(died.value.error, ConnectionError)
    assert cancelled.is_set(), "the other loops are stopped, not left running without wake-ups"


async def test_loops_that_end_on_stop_end_the_service_quietly() -> None:
    stop = asyncio.Event()

    async def loop() -> None:
        await stop.wait()

    runner = asyncio.create_task(supervise({"a": loop(), "b": loop()}))
    await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(runner, 5)
