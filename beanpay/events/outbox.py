"""Writing events: into `event_outbox`, inside the transaction of the change that causes them."""

from __future__ import annotations

import uuid
from typing import Any, NamedTuple

import msgspec

from beanpay.db import Connection
from beanpay.events.topics import topic_for

_encode = msgspec.json.Encoder(decimal_format="string").encode


async def emit(conn: Connection, event_type: str, aggregate_type: str, aggregate_id: object,
               payload: Any) -> uuid.UUID:
    """Queue one event; the relay publishes it to its topic keyed by `aggregate_id` after commit."""
    event_id = uuid.uuid4()
    await conn.execute(
        """INSERT INTO event_outbox (event_id, event_type, topic, aggregate_type, aggregate_id, payload)
           VALUES ($1, $2, $3, $4, $5, $6)""",
        event_id, event_type, topic_for(event_type), aggregate_type, str(aggregate_id),
        _encode(payload).decode(),
    )
    return event_id


class Event(NamedTuple):
    type: str
    aggregate_type: str
    aggregate_id: object
    payload: Any


async def emit_many(conn: Connection, events: list[Event]) -> list[uuid.UUID]:
    """Queue several events with one statement, in list order (ids ascend, so per-key order holds)."""
    if not events:
        return []
    ids = [uuid.uuid4() for _ in events]
    await conn.execute(
        """INSERT INTO event_outbox (event_id, event_type, topic, aggregate_type, aggregate_id, payload)
           SELECT event_id, event_type, topic, aggregate_type, aggregate_id, payload
           FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::jsonb[])
           WITH ORDINALITY AS e(event_id, event_type, topic, aggregate_type, aggregate_id, payload, n)
           ORDER BY n""",
        ids, [e.type for e in events], [topic_for(e.type) for e in events], [e.aggregate_type for e in events],
        [str(e.aggregate_id) for e in events], [_encode(e.payload).decode() for e in events])
    return ids
