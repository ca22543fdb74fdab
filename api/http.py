"""Responses, errors and request context shared by the handlers."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from beanpay.access import ANONYMOUS, Principal
from beanpay.api.ratelimit import client_ip
from beanpay.api.schemas import encoder
from beanpay.api.state import TRUSTED_PROXIES
from beanpay.audit import Actor
from beanpay.errors import NotFound

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PRINCIPAL: web.RequestKey[Principal] = web.RequestKey("principal", Principal)
REQUEST_ID: web.RequestKey[str] = web.RequestKey("request_id", str)  # the server's own, always
CLIENT_REQUEST_ID: web.RequestKey[str] = web.RequestKey("client_request_id", str)  # the client's, if well-formed
# what a client may call its request: a UUID, a trace or correlation id; anything else is dropped (a client's
# id is a label for its own logs, never evidence: audit rows keep it apart from the server's)
_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")


def json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=encoder.encode(data), status=status, content_type="application/json",
                        headers=headers)


def raw_json(body: bytes, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, content_type="application/json")


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def path_id(request: web.Request, name: str) -> str:
    """A path id as canonical lower-case UUID text, checked without building a UUID (hot read paths)."""
    raw = request.match_info[name].lower()
    if _UUID.fullmatch(raw) is None:
        raise NotFound(f"no such {name.removesuffix('_id')}: not a valid id")
    return raw


def path_uuid(request: web.Request, name: str) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info[name])
    except ValueError:
        raise NotFound(f"no such {name.removesuffix('_id')}: not a valid id") from None


def who(request: web.Request) -> Principal:
    """The principal the route's guard resolved (anonymous when none)."""
    found: Principal = request.get(PRINCIPAL, ANONYMOUS)
    return found


def principal(request: web.Request) -> str:
    """Who is asking, as a stable string (an idempotency key's owner). Guests are told apart by address,
    so one guest's key never replays another's answer (which carries that order's checkout token)."""
    p = who(request)
    if p.kind == "anonymous":
        return f"anonymous:{client_ip(request, request.app[TRUSTED_PROXIES])}"
    return p.owner_key


def client_request_id(request: web.Request) -> str | None:
    """The client's X-Request-Id if it fits the strict pattern, else None."""
    sent = request.headers.get("X-Request-Id")
    return sent if sent is not None and _CLIENT_REQUEST_ID.fullmatch(sent) else None


def actor(request: web.Request) -> Actor:
    p = who(request)
    return Actor(id=None if p.id is None else str(p.id), role=p.role, request_id=request.get(REQUEST_ID),
                 client_request_id=request.get(CLIENT_REQUEST_ID))
