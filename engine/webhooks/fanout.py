"""From Kafka to the delivery table: each event a shop's endpoint subscribed to becomes one delivery.

A consumer group reads the order, payment, claim and supply topics; a batch's deliveries are written
(unique per endpoint and event id) before its offsets are committed, so a crash, a Kafka redelivery
or a database outage re-reads events but never makes a second delivery of one.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import msgspec
import structlog
from aiokafka import AIOKafkaConsumer

from beanpay import queries
from beanpay.config import Settings
from beanpay.db import Connection, Database
from beanpay.events import catalog, envelope
from beanpay.events.consumer import stop_quietly
from beanpay.listen import Backoff, sleep

log = structlog.get_logger("webhooks")

SQL = queries.load("beanpay.engine", "webhooks.sql")
TOPICS = (catalog.ORDERS, catalog.PAYMENTS, catalog.CLAIMS, catalog.SUPPLIES)
NOTIFY = "beanpay_webhooks"
DELIVERABLE = catalog.names_on(TOPICS)
GATHER_SECONDS = 0.02
BATCH = 500


class _ShopPayload(msgspec.Struct):
    shop_id: uuid.UUID | None = None


_shop = msgspec.json.Decoder(_ShopPayload).decode
_encode = msgspec.json.encode


def body(event: envelope.Envelope) -> str:
    """The delivered JSON, in the Standard Webhooks shape: {type, timestamp, data}."""
    head = b'{"type":' + _encode(event.type) + b',"timestamp":' + _encode(event.occurred_at) + b',"data":'
    return (head + bytes(event.payload) + b"}").decode()


async def record(conn: Connection, events: list[envelope.Envelope]) -> int:
    """Deliveries for `events` to every enabled endpoint of their shop that wants the type and existed
    when the event happened. Returns how many new deliveries were made."""
    rows: list[tuple[str, uuid.UUID, str, str, dt.datetime]] = []
    for event in events:
        shop_id = _shop(event.payload).shop_id
        if shop_id is not None:
            rows.append((str(event.event_id), shop_id, event.type, body(event), event.occurred_at))
    if not rows:
        return 0
    made = await conn.fetch(SQL.record_deliveries, *map(list, zip(*rows, strict=True)))
    if made:
        conn.wake_after_commit(NOTIFY)  # after commit, not inside it (beanpay.wakeups says why)
    return len(made)


class Fanout:
    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings, self.db = settings, db
        self.connected = False  # to Kafka, with the last batch recorded: what readiness reports

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop`; on any Kafka or database failure, drop the consumer (uncommitted
        offsets are read again) and reconnect with backoff."""
        backoff = Backoff()
        while not stop.is_set():
            consumer = AIOKafkaConsumer(*TOPICS, bootstrap_servers=self.settings.kafka_servers,
                                        group_id=self.settings.webhook_group, enable_auto_commit=False,
                                        auto_offset_reset="earliest", fetch_max_wait_ms=100)
            try:
                await consumer.start()
                await self._consume(consumer, stop, backoff)
            except Exception as exc:  # Kafka or PostgreSQL away: nothing was committed past what was recorded
                self.connected = False
                log.warning("webhook fan-out failed; reconnecting", error=repr(exc), retry_in=round(backoff.delay, 1))
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
            events = []
            for m in messages:
                try:
                    events.append(envelope.decode(m.value))
                except msgspec.DecodeError:
                    log.error("undecodable event skipped", topic=m.topic, offset=m.offset)
            async with self.db.transaction() as conn:
                await record(conn, events)
            await consumer.commit()
            backoff.reset()
            if len(messages) < BATCH:  # caught up: a moment to gather, so the next batch holds many events
                await sleep(stop, GATHER_SECONDS)
