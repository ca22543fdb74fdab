"""Writing events: into `event_outbox`, inside the transaction of the change that causes them."""

from __future__ import annotations

import uuid
from typing import Any

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
