"""The audit log: who changed what, with the row before and after, in the caller's transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import msgspec

from beanpay import queries
from beanpay.db import Connection

SQL = queries.load("beanpay", "audit.sql")


@dataclass(frozen=True)
class Actor:
    id: str | None
    role: str
    request_id: str | None = None  # the server's own id of the request
    client_request_id: str | None = None  # what the client called it (X-Request-Id): kept apart, not evidence


SYSTEM = Actor(id=None, role="system")


def user_id(actor: Actor) -> uuid.UUID | None:
    """The actor as a user id for a `created_by` column (None: the system, a guest, an id that is no UUID)."""
    try:
        return uuid.UUID(actor.id) if actor.id else None
    except ValueError:
        return None

_encode = msgspec.json.Encoder(decimal_format="string").encode


@dataclass(frozen=True)
class Entry:
    action: str
    entity_type: str
    entity_id: object
    before: Any = None
    after: Any = None


def _json(value: Any) -> str | None:
    return None if value is None else _encode(value).decode()


async def record(conn: Connection, actor: Actor, action: str, entity_type: str, entity_id: object,
                 before: Any = None, after: Any = None) -> None:
    await record_many(conn, actor, [Entry(action, entity_type, entity_id, before, after)])


async def record_many(conn: Connection, actor: Actor, entries: list[Entry]) -> None:
    """Several audit rows in one statement (for batch transitions)."""
    if not entries:
        return
    rows = ([e.action for e in entries], [e.entity_type for e in entries], [str(e.entity_id) for e in entries],
            [_json(e.before) for e in entries], [_json(e.after) for e in entries])
    if actor.client_request_id is None:
        await conn.execute(SQL.insert_entries, actor.id, actor.role, actor.request_id, *rows)
    else:
        await conn.execute(SQL.insert_client_entries, actor.id, actor.role, actor.request_id, *rows,
                           actor.client_request_id)
