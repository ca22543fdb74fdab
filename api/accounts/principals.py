"""Who a request acts as, from what it carries: an API key or a JWT in `Authorization: Bearer`, or a
session cookie. Lookups are cached briefly (Redis, then each process) and dropped everywhere on
revocation, so revoking a session, key, grant or user holds on every API process within seconds.

An API key acts only while the person who made it could still make it: holds api-keys:manage and each of
the key's permissions on each of its shops, and is not disabled. That is checked on every use against the
maker's cached access, which a role change, removal or disabling drops everywhere, so a key stops with its
maker's role (and acts again should the role come back). A key made by no account (inserted by hand, or with
a development token, which names no stored person) is not checked.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Sequence

import jwt
import msgspec
from aiohttp import web

from beanpay import cachekeys, queries
from beanpay.access import ANONYMOUS, Principal, grantable
from beanpay.api.accounts import credentials
from beanpay.api.accounts.oidc import TokenRefused
from beanpay.api.state import OIDC, cache, pool, settings
from beanpay.errors import Forbidden, Unauthorized
from beanpay.tokens import ISSUER, InvalidToken, verify

SQL = queries.load("beanpay.api", "accounts.sql")
SESSION_COOKIE = "bp_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class SessionInfo(msgspec.Struct, frozen=True):
    user_id: uuid.UUID
    public_id: uuid.UUID
    second_factor: bool
    expires_at: dt.datetime


class Access(msgspec.Struct, frozen=True):
    operator: bool
    disabled: bool
    grants: dict[uuid.UUID, str]


class KeyInfo(msgspec.Struct, frozen=True):
    id: uuid.UUID
    permissions: list[str]
    shop_ids: list[uuid.UUID]
    maker: uuid.UUID | None = None  # the account that made the key, if it has one


_session = msgspec.json.Decoder(SessionInfo)
_access = msgspec.json.Decoder(Access)
_key = msgspec.json.Decoder(KeyInfo)
_grants = msgspec.json.Decoder(dict[uuid.UUID, str])
_touched: dict[uuid.UUID, float] = {}  # key id -> when this process last noted its use
# (key id, its maker's cached access) -> whether the maker could still make the key: the check is pure, and
# every request of an integration repeats it with the same bytes
_vouched: dict[tuple[uuid.UUID, bytes], bool] = {}
_VOUCHED_MAX = 10_000


async def resolve(request: web.Request, *, public: bool) -> Principal:
    """The request's principal (ANONYMOUS without credentials). Bad credentials are a 401; a session
    cookie on a write without its CSRF token is no credential at all (a public route then serves the
    request as anonymous, others refuse it)."""
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("use Authorization: Bearer <token or API key>")
        if token.startswith(credentials.API_KEY_PREFIX):
            return await _api_key(request, token)
        return await _jwt(request, token)
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id:
        found = await session_principal(request, session_id)
        if found is None:
            return ANONYMOUS  # an expired or revoked cookie: the person signs in again
        if request.method not in SAFE_METHODS:
            sent = request.headers.get(CSRF_HEADER, "")
            if not credentials.same(sent, credentials.csrf_token(session_id, settings(request).jwt_secret or "")):
                if public:
                    return ANONYMOUS
                raise Forbidden(f"a signed-in write needs the {CSRF_HEADER} header of its session")
        return found
    return ANONYMOUS


async def session_info(request: web.Request, session_id: str) -> SessionInfo | None:
    digest = credentials.digest(session_id)

    async def load() -> bytes | None:
        async with pool(request).acquire() as conn:
            row = await conn.fetchrow(SQL.session_lookup, digest)
        return None if row is None else msgspec.json.encode(SessionInfo(**dict(row)))

    raw = await cache(request).get_or_load(cachekeys.session_key(digest.hex()), _ttl(request), load)
    if raw is None:
        return None
    info = _session.decode(raw)
    return info if info.expires_at > dt.datetime.now(dt.UTC) else None


async def session_principal(request: web.Request, session_id: str) -> Principal | None:
    info = await session_info(request, session_id)
    if info is None:
        return None
    return await user_principal(request, info.user_id, second_factor=info.second_factor)


async def _user_access(request: web.Request, user_id: uuid.UUID) -> bytes | None:
    """The user's access (operator, disabled, grants) as cached JSON; None if there is no such account."""
    async def load() -> bytes | None:
        async with pool(request).acquire() as conn:
            row = await conn.fetchrow(SQL.user_access, user_id)
        if row is None:
            return None
        return msgspec.json.encode(Access(row["operator"], row["disabled"], _grants.decode(row["grants"])))

    return await cache(request).get_or_load(cachekeys.user_access_key(user_id), _ttl(request), load)


def _principal_of(user_id: uuid.UUID, access: Access, *, second_factor: bool) -> Principal:
    return Principal(kind="user", id=user_id, operator=access.operator, grants=access.grants,
                     second_factor=second_factor)


async def user_principal(request: web.Request, user_id: uuid.UUID, *, second_factor: bool) -> Principal | None:
    raw = await _user_access(request, user_id)
    if raw is None:
        return None
    access = _access.decode(raw)
    if access.disabled:
        return None
    return _principal_of(user_id, access, second_factor=second_factor)


async def _api_key(request: web.Request, key: str) -> Principal:
    digest = credentials.digest(key)

    async def load() -> bytes | None:
        async with pool(request).acquire() as conn:
            row = await conn.fetchrow(SQL.api_key_lookup, digest)
        return None if row is None else msgspec.json.encode(KeyInfo(**dict(row)))

    raw = await cache(request).get_or_load(cachekeys.api_key_key(digest.hex()), _ttl(request), load)
    if raw is None:
        raise Unauthorized("unknown, revoked or expired API key")
    info = _key.decode(raw)
    if info.maker is not None and not await _maker_vouches(request, info, info.maker):
        raise Unauthorized("this API key's maker no longer holds what the key may do (they left the shop, lost "
                           "the role, or were disabled): have an owner make a new key")
    now = time.monotonic()
    if now - _touched.get(info.id, -1e9) > 60:
        _touched[info.id] = now
        async with pool(request).acquire() as conn:
            await conn.execute(SQL.api_key_touch, info.id)
    return Principal(kind="api_key", id=info.id, permissions=frozenset(info.permissions),
                     shops=frozenset(info.shop_ids))


async def _maker_vouches(request: web.Request, info: KeyInfo, maker: uuid.UUID) -> bool:
    """Whether the key's maker could make this key now (the same rule as when it was made)."""
    raw = await _user_access(request, maker)
    if raw is None:
        return False
    known = _vouched.get((info.id, raw))
    if known is not None:
        return known
    access = _access.decode(raw)
    verdict = not access.disabled and not grantable(_principal_of(maker, access, second_factor=False),
                                                    set(info.permissions), set(info.shop_ids))
    if len(_vouched) >= _VOUCHED_MAX:
        _vouched.clear()
    _vouched[(info.id, raw)] = verdict
    return verdict


async def _jwt(request: web.Request, token: str) -> Principal:
    try:
        alg = jwt.get_unverified_header(token).get("alg")
        issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
    except jwt.PyJWTError:
        raise Unauthorized("invalid token: not a JWT") from None
    conf = settings(request)
    if issuer == ISSUER and alg == "HS256":
        if not conf.dev_tokens:
            raise Unauthorized("development tokens are turned off here; sign in or use an API key")
        try:
            claims = verify(token, conf.jwt_secret or "")
        except InvalidToken as exc:
            raise Unauthorized(f"invalid token: {exc}") from None
        if claims.role == "customer":
            return Principal(kind="customer", id=claims.sub)  # beanpay's own issuer: the subject as it is
        # a development token stands for a person signed in with a second factor only where it is a
        # development token (dev, test); should one be allowed in production, it never carries one
        strong = claims.second_factor and conf.env in ("dev", "test")
        if claims.role == "operator":
            return Principal(kind="user", id=claims.sub, operator=True, second_factor=strong)
        role = "owner" if claims.role == "merchant" else "staff"
        return Principal(kind="user", id=claims.sub, grants=dict.fromkeys(claims.shops, role), second_factor=strong)
    verifier = request.app[OIDC]
    if not verifier.knows(issuer):
        raise Unauthorized("invalid token: unknown issuer")
    try:
        return Principal(kind="customer", id=await verifier.customer(token, str(issuer)))
    except TokenRefused as exc:
        raise Unauthorized(f"invalid token: {exc}") from None


async def refuse_without_second_factor(request: web.Request, principal: Principal) -> None:
    """A 403 unless the principal signed in with its second factor, saying what to do: turn TOTP on, or
    sign in again with it (a session opened before it was on, or by password alone)."""
    if principal.second_factor:
        return
    has_totp = False
    if principal.kind == "user" and principal.id is not None:
        async with pool(request).acquire() as conn:
            has_totp = bool(await conn.fetchval(SQL.user_has_totp, principal.id))
    if has_totp:
        raise Forbidden("this needs a session signed in with your second factor: sign in again with your TOTP code")
    raise Forbidden("this needs a second factor: turn TOTP on (POST /v1/auth/totp/setup, then /v1/auth/totp/enable) "
                    "and sign in again with its code")


def _ttl(request: web.Request) -> int:
    return settings(request).access_cache_seconds


async def forget(request: web.Request, *, sessions: Sequence[bytes] = (), users: Sequence[uuid.UUID] = (),
                 keys: Sequence[bytes] = ()) -> None:
    """Drop cached credentials everywhere (after the revoking transaction committed)."""
    await cache(request).invalidate(*(cachekeys.session_key(d.hex()) for d in sessions),
                                    *(cachekeys.user_access_key(u) for u in users),
                                    *(cachekeys.api_key_key(d.hex()) for d in keys))
