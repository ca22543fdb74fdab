"""`Idempotency-Key` on every POST route: a retry gets the answer of the first request.

The answer is recorded by the handler in the same transaction as its change (`Mutation.respond`), so
a crash can never keep one without the other: a request that did not commit left no key, and its
retry runs again; one that committed left its answer, and its retry is answered with it. Two
requests with the same key at once serialize on the key's row: the second rolls back and replays.

Keys belong to the principal (subject, role and shop scopes; see beanpay.idempotency): another
principal sending the same key runs its own request under its own authorization. The same key with
another request body is a 409. Answers that show a secret once (a webhook's signing secret) are
stored without it.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from aiohttp import web

from beanpay import idempotency
from beanpay.api.body import read_body
from beanpay.api.errors import error_response
from beanpay.api.http import Handler, principal
from beanpay.api.schemas import FieldError
from beanpay.api.state import pool, settings
from beanpay.db import PgConnection

log = structlog.get_logger("api")

KEY: web.RequestKey[idempotency.Key | None] = web.RequestKey("idempotency_key", idempotency.Key | None)  # type: ignore[arg-type]
RECORDED: web.RequestKey[bool] = web.RequestKey("idempotency_recorded", bool)
STORED_BODY = "idempotency_stored_body"  # a response's item: what to store instead of its body


def idempotent(handler: Handler, *, inline: bool = False) -> Handler:
    """Wrap a POST handler. `inline`: the handler looks the key up itself (in its first statement)."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        header = request.headers.get("Idempotency-Key")
        if header is None:
            request[KEY] = None
            return await handler(request)
        if not 1 <= len(header) <= 255:
            return error_response(422, "validation_error", "bad Idempotency-Key",
                                  fields=[FieldError("header.Idempotency-Key", "must be 1 to 255 characters")])
        key = await _key(request, header)
        if not inline and (stored := await _lookup(key, request)) is not None:
            return _replay(stored, key)
        request[KEY] = key
        try:
            response = await handler(request)
        except idempotency.Replay:  # a concurrent request with the key committed first
            stored = await _lookup(key, request)
            if stored is None:
                return error_response(409, "request_in_progress", "a request with this Idempotency-Key is in progress")
            return _replay(stored, key)
        if 200 <= response.status < 300 and not request.get(RECORDED, False):
            raise RuntimeError(f"{request.method} {request.path} answered without recording its Idempotency-Key")
        return response

    return wrapped


async def _key(request: web.Request, header: str) -> idempotency.Key:
    digest = hashlib.sha256(f"{request.method} {request.path}\n".encode() + await read_body(request)).digest()
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=settings(request).idempotency_ttl_seconds)
    return idempotency.Key(principal(request), header, request.method, request.path, digest, expires)


async def _lookup(key: idempotency.Key, request: web.Request) -> idempotency.Answer | None:
    async with pool(request).acquire() as conn:
        return await idempotency.lookup(conn, key)


def _replay(stored: idempotency.Answer, key: idempotency.Key) -> web.Response:
    if stored.request_hash != key.request_hash:
        return error_response(409, "idempotency_key_reused", "this Idempotency-Key was used for a different request")
    return web.Response(status=stored.status_code, body=stored.response_body, content_type="application/json",
                        headers={"Idempotent-Replayed": "true"})


def replay(stored: idempotency.Answer, request: web.Request) -> web.Response:
    """The stored answer for this request's key (handlers that look the key up inline)."""
    key = request[KEY]
    assert key is not None
    request[RECORDED] = True
    return _replay(stored, key)


class Mutation:
    """A handler's transaction: its connection, and the answer recorded with it."""

    def __init__(self, request: web.Request, conn: PgConnection) -> None:
        self.request, self.conn = request, conn

    async def respond(self, response: web.Response, *, stored: bytes | None = None) -> web.Response:
        """Record `response` under the request's Idempotency-Key, if it has one (`stored`: the body to
        keep instead, when the response shows a secret once)."""
        key = self.request.get(KEY)
        if key is not None:
            body = stored if stored is not None else response.body
            assert isinstance(body, bytes)
            await idempotency.record(self.conn, key, response.status, body)
        self.request[RECORDED] = True
        return response


@asynccontextmanager
async def mutation(request: web.Request) -> AsyncIterator[Mutation]:
    """One transaction for a write, whose answer is recorded in it: `return await m.respond(...)`."""
    async with pool(request).transaction() as conn:
        yield Mutation(request, conn)


def key_of(request: web.Request) -> idempotency.Key | None:
    return request.get(KEY)


def mark_recorded(request: web.Request) -> None:
    """For handlers that recorded the answer themselves, inside their own statement."""
    request[RECORDED] = True
