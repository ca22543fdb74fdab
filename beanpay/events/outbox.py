"""Writing events: into `event_outbox`, inside the transaction of the change that causes them."""

from __future__ import annotations

import uuid
from typing import Any, Generic, NamedTuple, TypeVar

import msgspec

from beanpay import queries, tracing
from beanpay.db import Connection
from beanpay.events.catalog import EventType

SQL = queries.load("beanpay", "outbox.sql")
CHANNEL = "beanpay_outbox"  # the relay listens here
_encode = msgspec.json.Encoder(decimal_format="string").encode

P = TypeVar("P", bound=msgspec.Struct)


class Event(NamedTuple, Generic[P]):
    type: EventType[P]
    aggregate_id: object
    payload: P
    trace: str | None = None  # the traceparent it continues; None: the current span's (beanpay.tracing)


async def emit(conn: Connection, event_type: EventType[P], aggregate_id: object, payload: P) -> uuid.UUID:
    """Queue one event; the relay publishes it to its topic keyed by `aggregate_id` after commit."""
    return (await emit_many(conn, [Event(event_type, aggregate_id, payload)]))[0]


async def emit_many(conn: Connection, events: list[Event[Any]]) -> list[uuid.UUID]:
    """Queue several events with one statement, in list order."""
    if not events:
        return []
    ids = [uuid.uuid4() for _ in events]
    here = tracing.current()
    await conn.execute(
        SQL.insert_events, ids, [e.type.name for e in events], [e.type.topic for e in events],
        [e.type.aggregate for e in events], [str(e.aggregate_id) for e in events],
        [_encode(e.payload).decode() for e in events], [e.trace or here for e in events])
    conn.wake_after_commit(CHANNEL)
    return ids
