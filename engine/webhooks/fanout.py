"""From Kafka to the delivery table: each event a shop's endpoint subscribed to becomes one delivery.

A consumer group reads the order, payment, claim and supply topics; a batch's deliveries are written
(unique per endpoint and event id) before its offsets are committed, so a crash, a Kafka redelivery
or a database outage re-reads events but never makes a second delivery of one.
"""

from __future__ import annotations

import datetime as dt
import uuid

import msgspec
import structlog

from beanpay import queries, tracing
from beanpay.config import Settings
from beanpay.db import Connection, Database
from beanpay.events import catalog, envelope
from beanpay.events.consumer import GroupReader

log = structlog.get_logger("webhooks")

SQL = queries.load("beanpay.engine", "webhooks.sql")
TOPICS = (catalog.ORDERS, catalog.PAYMENTS, catalog.CLAIMS, catalog.SUPPLIES)
NOTIFY = "beanpay_webhooks"
DELIVERABLE = catalog.names_on(TOPICS)


class _ShopPayload(msgspec.Struct):
    shop_id: uuid.UUID | None = None


_shop = msgspec.json.Decoder(_ShopPayload).decode
_encode = msgspec.json.encode


def body(event: envelope.Envelope) -> str:
    """The delivered JSON, in the Standard Webhooks shape: {type, timestamp, data}."""
    head = b'{"type":' + _encode(event.type) + b',"timestamp":' + _encode(event.occurred_at) + b',"data":'
    return (head + bytes(event.payload) + b"}").decode()


async def record(conn: Connection, events: list[envelope.Envelope], traces: list[str | None]) -> int:
    """Deliveries for `events` to every enabled endpoint of their shop that wants the type and existed
    when the event happened, each continuing the event's trace. Returns how many new deliveries were made."""
    rows: list[tuple[str, uuid.UUID, str, str, dt.datetime, str | None]] = []
    for event, trace in zip(events, traces, strict=True):
        shop_id = _shop(event.payload).shop_id
        if shop_id is not None:
            if tracing.enabled:
                trace = tracing.child_of(trace, f"fan out {event.type}", kind=tracing.CONSUMER,
                                         attributes={"messaging.message.id": str(event.event_id)})
            rows.append((str(event.event_id), shop_id, event.type, body(event), event.occurred_at, trace))
    if not rows:
        return 0
    made = await conn.fetch(SQL.record_deliveries, *map(list, zip(*rows, strict=True)))
    if made:
        conn.wake_after_commit(NOTIFY)  # after commit, not inside it (beanpay.wakeups says why)
    return len(made)


class Fanout(GroupReader):
    def __init__(self, settings: Settings, db: Database) -> None:
        super().__init__(settings, db, TOPICS, settings.webhook_group, "webhook fan-out", record)
