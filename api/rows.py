"""Database rows into wire types, and opaque keyset cursors."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

import asyncpg
import msgspec

from beanpay.api.schemas import Page
from beanpay.errors import InvalidInput

T = TypeVar("T")


def to_struct(row: asyncpg.Record, kind: type[T], json_fields: Sequence[str] = ()) -> T:
    data = dict(row)
    for name in json_fields:
        if data.get(name) is not None:
            data[name] = msgspec.json.decode(data[name])
    return msgspec.convert(data, kind, strict=False)


def to_structs(rows: Iterable[asyncpg.Record], kind: type[T], json_fields: Sequence[str] = ()) -> list[T]:
    return [to_struct(r, kind, json_fields) for r in rows]


def encode_cursor(*parts: Any) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode(parts)).decode().rstrip("=")


def decode_cursor(cursor: str, *kinds: type) -> tuple[Any, ...]:
    """Parts of a cursor made by encode_cursor, typed; a tampered cursor is a 422, not a 500."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        parts = msgspec.json.decode(raw, type=tuple[kinds])  # type: ignore[valid-type]
    except (binascii.Error, ValueError, msgspec.DecodeError, msgspec.ValidationError):
        raise InvalidInput("bad cursor", [{"field": "query.cursor", "message": "not a cursor from this API"}]) from None
    return tuple(parts)


def in_range(value: dt.datetime) -> bool:
    """Whether PostgreSQL can hold this time: aware, and still inside years 1..9999 once in UTC
    (9999-12-31T23:00-05:00 is in year 10000 there)."""
    try:
        value.astimezone(dt.UTC)
    except (OverflowError, ValueError):
        return False
    return True


def keyset(cursor: str | None) -> tuple[dt.datetime | None, uuid.UUID | None]:
    """Where a (created_at, id) page starts: after the cursor's row, or at the start."""
    if not cursor:
        return None, None
    created, last_id = decode_cursor(cursor, dt.datetime, uuid.UUID)
    if created.tzinfo is None:
        created = created.replace(tzinfo=dt.UTC)
    if not in_range(created):
        raise InvalidInput("bad cursor", [{"field": "query.cursor", "message": "not a cursor from this API"}])
    return created, last_id


def page_of(rows: Sequence[asyncpg.Record], limit: int, kind: type[T], json_fields: Sequence[str] = ()) -> Page[T]:
    """A page from up to limit + 1 rows (one more than shown says there is a next page)."""
    items = to_structs(rows[:limit], kind, json_fields)
    last: Any = items[-1] if items and len(rows) > limit else None
    return Page(items=items, next_cursor=None if last is None else encode_cursor(last.created_at.isoformat(),
                                                                                  str(last.id)))
