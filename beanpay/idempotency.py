"""Idempotency keys: the answer to a retried request is the answer to the first one, recorded in the
same transaction as the change it answers for (a crash can never keep one without the other).

A key belongs to a principal: the caller's subject, role and shop scopes, so the same key sent by
anyone else is a different key and never replays their answer. Keys expire (24 h by default) and
the engine prunes them. Only successful answers are recorded: a refused request changed nothing,
so its retry simply runs again.
"""

from __future__ import annotations

import datetime as dt

import msgspec

from beanpay import queries
from beanpay.db import Connection, Database, fetchrow_as

SQL = queries.load("beanpay", "idempotency.sql")


class Key(msgspec.Struct, frozen=True):
    principal: str
    key: str
    method: str
    path: str
    request_hash: bytes
    expires_at: dt.datetime


class Answer(msgspec.Struct):
    request_hash: bytes
    status_code: int
    response_body: bytes


class Replay(Exception):
    """A concurrent request with the same key committed first: roll back, then answer with its response."""


async def lookup(conn: Connection, key: Key) -> Answer | None:
    return await fetchrow_as(conn, SQL.lookup, Answer, key.principal, key.key)


async def record(conn: Connection, key: Key, status: int, body: bytes) -> None:
    """Store the answer (call inside the change's transaction); raises Replay if the key was taken."""
    if not await conn.fetchval(SQL.record, key.principal, key.key, key.method, key.path, key.request_hash,
                               status, body, key.expires_at):
        raise Replay()


async def prune(db: Database, batch: int = 1000) -> int:
    async with db.transaction() as conn:
        return int((await conn.execute(SQL.prune, batch)).split()[-1])
