"""Database rows into wire types, and opaque keyset cursors."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

import asyncpg
import msgspec

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

