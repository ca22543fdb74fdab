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



class KeysetPage:
    """A filtered listing paged by the (created_at, id) keyset: stable under inserts, no OFFSET scans."""

    def __init__(self, limit: int, cursor: str | None) -> None:
        self.limit = limit
        self.args: list[object] = [limit + 1]
        self.clauses: list[str] = []
        if cursor:
            created, last_id = decode_cursor(cursor, dt.datetime, uuid.UUID)
            self.where("(created_at, id) > (?, ?)", created, last_id)

    def where(self, clause: str, *values: object) -> None:
        """Add a condition; each `?` in it becomes the next numbered parameter."""
        for value in values:
            self.args.append(value)
            clause = clause.replace("?", f"${len(self.args)}", 1)
        self.clauses.append(clause)

    async def fetch(self, conn: asyncpg.Connection, columns: str, table: str, kind: type[T],
                    json_fields: Sequence[str] = ()) -> Page[T]:
        rows = await conn.fetch(
            f"SELECT {columns} FROM {table} WHERE {' AND '.join(self.clauses) or 'true'} "
            "ORDER BY created_at, id LIMIT $1", *self.args)
        items = to_structs(rows[: self.limit], kind, json_fields)
        last: Any = items[-1] if items else None
        more = len(rows) > self.limit
        return Page(items=items, next_cursor=encode_cursor(last.created_at.isoformat(), str(last.id)) if more else None)
