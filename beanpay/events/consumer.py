"""Helpers for Kafka consumers that must outlive the broker."""

from __future__ import annotations

import asyncio

import structlog
from aiokafka import AIOKafkaConsumer

log = structlog.get_logger("kafka")


async def stop_quietly(consumer: AIOKafkaConsumer) -> None:
    """Stop a consumer whatever state it is in. aiokafka's stop() can raise, even CancelledError from
    its own tasks; that must not kill the consuming loop, unless this task itself is being cancelled."""
    try:
        await asyncio.wait_for(consumer.stop(), 10)
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
    except Exception as exc:  # a consumer that cannot stop cleanly is dropped all the same
        log.info("consumer did not stop cleanly", error=repr(exc))
