"""Kafka consumers that must outlive the broker: a consumer group whose batches are recorded in
PostgreSQL before their offsets are committed, so a crash, a redelivery or a database outage reads
events again but never loses one (what is recorded is keyed by event id, so it is never doubled)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import msgspec
import structlog
from aiokafka import AIOKafkaConsumer

from beanpay import tracing
from beanpay.config import Settings
from beanpay.db import Connection, Database
from beanpay.events import envelope
from beanpay.listen import Backoff, sleep

log = structlog.get_logger("kafka")
GATHER_SECONDS = 0.02
BATCH = 500
Record = Callable[[Connection, list[envelope.Envelope], list[str | None]], Awaitable[Any]]


class GroupReader:
    """Consume `topics` as `group`; each batch goes to `record` inside one transaction, then commits.
    `record` gets the events and, in the same order, the traceparent each carried in its headers."""

    def __init__(self, settings: Settings, db: Database, topics: tuple[str, ...], group: str, name: str,
                 record: Record) -> None:
        self.settings, self.db, self.topics, self.group, self.name, self.record = \
            settings, db, topics, group, name, record
        self.connected = False  # to Kafka, with the last batch recorded: what readiness reports

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop`; on any Kafka or database failure, drop the consumer (uncommitted
        offsets are read again) and reconnect with backoff."""
        backoff = Backoff()
        while not stop.is_set():
            consumer = AIOKafkaConsumer(*self.topics, bootstrap_servers=self.settings.kafka_servers,
                                        group_id=self.group, enable_auto_commit=False,
                                        auto_offset_reset="earliest", fetch_max_wait_ms=100)
            try:
                await consumer.start()
                await self._consume(consumer, stop, backoff)
            except Exception as exc:  # Kafka or PostgreSQL away: nothing was committed past what was recorded
                self.connected = False
                log.warning(f"{self.name} failed; reconnecting", error=repr(exc), retry_in=round(backoff.delay, 1))
                await stop_quietly(consumer)
                await backoff.wait(stop)
            else:
                await stop_quietly(consumer)

    async def _consume(self, consumer: AIOKafkaConsumer, stop: asyncio.Event, backoff: Backoff) -> None:
        while not stop.is_set():
            batches: dict[Any, list[Any]] = await consumer.getmany(timeout_ms=200, max_records=BATCH)
            self.connected = True
            messages = [m for batch in batches.values() for m in batch]
            if not messages:
                continue
            events, traces = [], []
            for m in messages:
                try:
                    events.append(envelope.decode(m.value))
                except msgspec.DecodeError:
                    log.error("undecodable event skipped", topic=m.topic, offset=m.offset)
                    continue
                traces.append(_traceparent(m.headers))
            async with self.db.transaction() as conn:
                await self.record(conn, events, traces)
            await consumer.commit()
            backoff.reset()
            if len(messages) < BATCH:  # caught up: a moment to gather, so the next batch holds many events
                await sleep(stop, GATHER_SECONDS)


def _traceparent(headers: Sequence[tuple[str, bytes]] | None) -> str | None:
    for key, value in headers or ():
        if key == tracing.HEADER:
            return value.decode("ascii", "replace")
    return None


async def stop_quietly(consumer: AIOKafkaConsumer) -> None:
    """Stop a consumer whatever state it is in. aiokafka's stop() can raise, even CancelledError from
    its own tasks; that must not kill the consuming loop, unless this task itself is being cancelled."""
    try:
        async with asyncio.timeout(10):
            await consumer.stop()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
    except Exception as exc:  # a consumer that cannot stop cleanly is dropped all the same
        log.info("consumer did not stop cleanly", error=repr(exc))
