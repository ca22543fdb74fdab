"""Responses, errors and request context shared by the handlers."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from beanpay.api.schemas import encoder
from beanpay.api.state import SETTINGS
from beanpay.audit import Actor
from beanpay.errors import Forbidden, NotFound, Unauthorized
from beanpay.tokens import Claims, InvalidToken, verify

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CLAIMS: web.RequestKey[Claims | None] = web.RequestKey("claims", Claims | None)  # type: ignore[arg-type]
REQUEST_ID: web.RequestKey[str] = web.RequestKey("request_id", str)


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


def optional_claims(request: web.Request) -> Claims | None:
    """The caller's verified token, or None without one; parsed once, only by handlers that ask."""
    if CLAIMS in request:
        return request[CLAIMS]
    header = request.headers.get("Authorization")
    found = None
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("use Authorization: Bearer <token>")
        try:
            found = verify(token.strip(), request.app[SETTINGS].jwt_secret or "")
        except InvalidToken as exc:
            raise Unauthorized(f"invalid token: {exc}") from None
    request[CLAIMS] = found
    return found


def claims(request: web.Request) -> Claims:
    c = optional_claims(request)
    if c is None:
        raise Unauthorized("a bearer token is required")
    return c


def require(request: web.Request, *roles: str) -> Claims:
    c = claims(request)
    if c.role not in roles:
        raise Forbidden(f"role {c.role!r} may not do this; allowed: {', '.join(roles)}")
    return c


def require_shop(request: web.Request, shop_id: uuid.UUID, *roles: str) -> Claims:
    """The caller has one of `roles` and (unless operator) is scoped to this shop."""
    c = require(request, *roles)
    if not c.can_manage(shop_id):
        raise Forbidden("your token is not scoped to this shop")
    return c


def principal(request: web.Request) -> str:
    """Who is asking, as a stable string: subject, role and shop scopes (an idempotency key's owner)."""
    c = optional_claims(request)
    if c is None:
        return "anonymous"
    return f"{c.role}:{c.sub}:{','.join(sorted(str(s) for s in c.shops))}"


def actor(request: web.Request) -> Actor:
    c = optional_claims(request)
    rid = request.get(REQUEST_ID)
    return Actor(id=None, role="anonymous", request_id=rid) if c is None else Actor(str(c.sub), c.role, rid)
