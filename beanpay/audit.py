"""The audit log: who changed what, with the row before and after, in the caller's transaction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from beanpay.db import Connection


@dataclass(frozen=True)
class Actor:
    id: str | None
    role: str
    request_id: str | None = None


SYSTEM = Actor(id=None, role="system")

_encode = msgspec.json.Encoder().encode


async def record(conn: Connection, actor: Actor, action: str, entity_type: str, entity_id: object,
                 before: Any = None, after: Any = None) -> None:
    await conn.execute(
        """INSERT INTO audit_log (actor_id, actor_role, action, entity_type, entity_id, before, after, request_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
        actor.id, actor.role, action, entity_type, str(entity_id),
        None if before is None else _encode(before).decode(),
        None if after is None else _encode(after).decode(),
        actor.request_id,
    )


@dataclass(frozen=True)
class Entry:
    action: str
    entity_type: str
    entity_id: object
    before: Any = None
    after: Any = None


async def record_many(conn: Connection, actor: Actor, entries: list[Entry]) -> None:
    """Several audit rows in one statement (for batch transitions)."""
    if not entries:
        return
    await conn.execute(
        """INSERT INTO audit_log (actor_id, actor_role, action, entity_type, entity_id, before, after, request_id)
           SELECT $1, $2, e.action, e.entity_type, e.entity_id, e.before, e.after, $3
           FROM unnest($4::text[], $5::text[], $6::text[], $7::jsonb[], $8::jsonb[])
                AS e(action, entity_type, entity_id, before, after)""",
        actor.id, actor.role, actor.request_id, [e.action for e in entries], [e.entity_type for e in entries],
        [str(e.entity_id) for e in entries],
        [None if e.before is None else _encode(e.before).decode() for e in entries],
        [None if e.after is None else _encode(e.after).decode() for e in entries])
