"""`Idempotency-Key` on every POST route: the first response to a key is stored and replayed to retries.

The same key with another request body is a 409; a retry while the first is still running is a
409 too. A request that failed with a 5xx frees its key so the client can try again, and a key
left unfinished by a crash is taken over after IN_FLIGHT_TIMEOUT.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import uuid

from aiohttp import web

from beanpay.api.errors import error_response, from_exception
from beanpay.api.http import Handler, optional_claims
from beanpay.api.schemas import FieldError
from beanpay.api.state import pool

IN_FLIGHT_TIMEOUT = dt.timedelta(seconds=60)
ANONYMOUS = uuid.UUID(int=0)


def idempotent(handler: Handler) -> Handler:
    """Wrap a POST handler so that retries with the same Idempotency-Key get the first answer."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        return await _run_once(request, handler)

    return wrapped


async def _run_once(request: web.Request, handler: Handler) -> web.StreamResponse:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return await handler(request)
    if not 1 <= len(key) <= 255:
        return error_response(422, "validation_error", "bad Idempotency-Key",
                              fields=[FieldError("header.Idempotency-Key", "must be 1 to 255 characters")])
    claims = optional_claims(request)
    actor_id = ANONYMOUS if claims is None else claims.sub
    digest = hashlib.sha256(f"{request.method} {request.path}\n".encode() + await request.read()).digest()
    db = pool(request)
    claimed = await db.fetchval(
        """INSERT INTO idempotency_keys (actor_id, key, method, path, request_hash) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (actor_id, key) DO UPDATE SET created_at = now()
               WHERE idempotency_keys.completed_at IS NULL
                 AND idempotency_keys.request_hash = EXCLUDED.request_hash
                 AND idempotency_keys.created_at < now() - $6::interval
           RETURNING true""",
        actor_id, key, request.method, request.path, digest, IN_FLIGHT_TIMEOUT)
    if not claimed:
        row = await db.fetchrow(
            "SELECT request_hash, status_code, response_body FROM idempotency_keys WHERE actor_id = $1 AND key = $2",
            actor_id, key)
        if row is None or row["request_hash"] != digest:
            return error_response(409, "idempotency_key_reused",
                                  "this Idempotency-Key was used for a different request")
        if row["status_code"] is None:
            return error_response(409, "request_in_progress", "a request with this Idempotency-Key is in progress")
        return web.Response(status=row["status_code"], body=row["response_body"], content_type="application/json",
                            headers={"Idempotent-Replayed": "true"})
    try:
        response = await handler(request)
    except Exception as exc:  # the stored answer must be what the client saw
        response = from_exception(exc)
    if response.status >= 500 or not isinstance(response, web.Response):
        await db.execute("DELETE FROM idempotency_keys WHERE actor_id = $1 AND key = $2", actor_id, key)
        return response
    await db.execute(
        """UPDATE idempotency_keys SET status_code = $3, response_body = $4, completed_at = now()
           WHERE actor_id = $1 AND key = $2""", actor_id, key, response.status, response.body)
    return response
