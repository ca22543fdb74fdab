"""From Kafka to the delivery table: each event a shop's endpoint subscribed to becomes one delivery.

A consumer group reads the order, payment, claim and supply topics; a batch's deliveries are written
(unique per endpoint and event id) before its offsets are committed, so a crash or a Kafka
redelivery re-reads events but never makes a second delivery of one.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import msgspec
import structlog
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from beanpay.config import Settings
from beanpay.db import Connection, Pool, transaction
from beanpay.events import envelope
from beanpay.listen import sleep

log = structlog.get_logger("webhooks")

TOPICS = ("order-events", "payment-events", "claim-events", "supply-events")
NOTIFY = "beanpay_webhooks"


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
    made = await conn.fetch(
        """INSERT INTO webhook_deliveries (endpoint_id, event_id, event_type, body)
           SELECT e.id, ev.event_id, ev.event_type, ev.body
           FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::timestamptz[])
                AS ev(event_id, shop_id, event_type, body, occurred_at)
           JOIN webhook_endpoints e ON e.shop_id = ev.shop_id AND e.enabled AND e.created_at <= ev.occurred_at
                AND (ev.event_type = ANY(e.event_types) OR '*' = ANY(e.event_types))
           ON CONFLICT (endpoint_id, event_id) DO NOTHING RETURNING id""",
        [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows],
        [r[4] for r in rows])
    if made:
        await conn.execute(f"NOTIFY {NOTIFY}")
    return len(made)


async def run_fanout(settings: Settings, pool: Pool, stop: asyncio.Event) -> None:
    while not stop.is_set():
        consumer = AIOKafkaConsumer(*TOPICS, bootstrap_servers=settings.kafka_servers, group_id=settings.webhook_group,
                                    enable_auto_commit=False, auto_offset_reset="earliest")
        try:
            await consumer.start()
            while not stop.is_set():
                batches: dict[Any, list[Any]] = await consumer.getmany(timeout_ms=200, max_records=500)
                messages = [m for batch in batches.values() for m in batch]
                if not messages:
                    continue
                events = []
                for m in messages:
                    try:
                        events.append(envelope.decode(m.value))
                    except msgspec.DecodeError:
                        log.error("undecodable event skipped", topic=m.topic, offset=m.offset)
                async with transaction(pool) as conn:
                    await record(conn, events)
                await consumer.commit()
        except (KafkaError, OSError) as exc:
            log.warning("webhook fan-out lost Kafka; reconnecting", error=repr(exc))
            await sleep(stop, 2)
        finally:
            await consumer.stop()
