"""The versioned envelope every event travels in on Kafka."""

from __future__ import annotations

import datetime as dt
import uuid

import msgspec

ENVELOPE_VERSION = 1


class Envelope(msgspec.Struct, frozen=True):
    version: int
    event_id: uuid.UUID
    type: str
    occurred_at: dt.datetime
    aggregate_type: str
    aggregate_id: str
    payload: msgspec.Raw  # the event's own JSON, passed through without re-encoding
    schema_version: int = 1  # the payload's version (beanpay.events.catalog)


encode = msgspec.json.Encoder().encode
decode = msgspec.json.Decoder(Envelope).decode
