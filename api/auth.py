"""Signing in and out: sessions in an httpOnly cookie, the CSRF token of each session, password
changes, the sessions a person has open, and an optional TOTP second factor.

Every check of a password or code goes through the sign-in throttle (api/accounts/throttle.py), under one
key per account (its email) whichever route checks it: counted before it runs, per client network (refused
past the budget) and per account and network (slowed, never locked, so the owner of an account under attack
still signs in from where they have not failed). A TOTP code is checked only after the right password, at
most a few wrong ones per account in a quarter of an hour, and is accepted once: its time step must be later
than the last one the account used.

An operator signed in without the second factor may only sign out, set TOTP up and change the password
(`OWN_SIGN_IN`); every other write of theirs is refused by the guard.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid

import msgspec
import pyotp
from aiohttp import web

from beanpay import audit, queries
from beanpay.access import Principal
from beanpay.api.accounts import credentials, throttle, users
from beanpay.api.accounts.principals import SESSION_COOKIE, forget, session_info
from beanpay.api.accounts.schemas import (
    Grant,
    Login,
    Me,
    PasswordChange,
    SessionOut,
    TotpDisable,
    TotpEnable,
    TotpSetup,
    UserOut,
)
from beanpay.api.body import decode_body
from beanpay.api.guard import before_second_factor, public, signed_in
from beanpay.api.http import actor, json, path_uuid, who
from beanpay.api.idempotency import mutation
from beanpay.api.ratelimit import client_ip
from beanpay.api.routing import Routes
from beanpay.api.state import TRUSTED_PROXIES, pool, settings
from beanpay.audit import Actor
from beanpay.db import Connection
from beanpay.errors import Forbidden, InvalidInput, NotFound, RateLimited, Unauthorized

routes = Routes()
SQL = queries.load("beanpay.api", "accounts.sql")
YOU = signed_in("a signed-in person, for their own account")
# what an operator without the second factor may still do: sign out, turn it on, change the password
OWN_SIGN_IN = before_second_factor("a signed-in person, for their own account")
TOTP_ISSUER = "beanpay"


class SecondFactorRequired(Unauthorized):
    code = "second_factor_required"


def account(request: web.Request) -> tuple[Principal, uuid.UUID]:
    """The signed-in person (a user principal) and their id."""
    p = who(request)
    if p.kind != "user" or p.id is None:
        raise Forbidden("only people with a beanpay account have this (not API keys or customers)")
    return p, p.id


def user_out(user: users.UserRow) -> UserOut:
    return UserOut(id=user.id, email=user.email, display_name=user.display_name, operator=user.operator,
                   totp=user.totp, created_at=user.created_at)


async def me_of(conn: Connection, request: web.Request, user_id: uuid.UUID, session_id: str | None,
                public_id: uuid.UUID | None, expires_at: dt.datetime | None) -> Me:
    user = await users.load_user(conn, user_id)
    grants = await users.grants_of(conn, user_id)
    csrf = None if session_id is None else credentials.csrf_token(session_id, settings(request).jwt_secret or "")
    return Me(user=user_out(user), grants=[Grant(s, r) for s, r in sorted(grants.items(), key=lambda g: str(g[0]))],
              session_id=public_id, csrf_token=csrf, expires_at=expires_at)


def totp_step(secret: str, code: str) -> int | None:
    """The time step (30 s) whose code `code` is, allowing one step of clock drift either way; None if none."""
    totp = pyotp.TOTP(secret)
    now = int(time.time()) // totp.interval
    for step in (now, now - 1, now + 1):
        if credentials.same(totp.generate_otp(step), code):
            return step
    return None


async def spend_totp(request: web.Request, user_id: uuid.UUID, secret: str, code: str) -> bool:
    """Whether `code` is the account's and not used before (nor an earlier one): it is spent if so."""
    step = totp_step(secret, code)
    if step is None:
        return False
    async with pool(request).transaction() as conn:
        return await conn.fetchval(SQL.totp_spend, user_id, step) is not None


@routes.add("POST", "/v1/auth/login", summary="Sign in: opens a session (cookie) and returns its CSRF token",
            tag="auth", body=Login, response=Me, policy=public(), errors=(400, 401, 422, 429))
async def login(request: web.Request) -> web.Response:
    body = await decode_body(request, Login)
    email = users.normalize_email(body.email)
    tried = await throttle.attempt(request, email)
    async with pool(request).acquire() as conn:
        row = await conn.fetchrow(SQL.user_by_email, email)
    stored = None if row is None else row["password_hash"]
    # argon2 takes tens of milliseconds of CPU: off the event loop, so other requests go on meanwhile
    matches = await asyncio.to_thread(credentials.check_password, stored, body.password)
    if row is None or not matches or row["disabled_at"] is not None:
        raise Unauthorized("wrong email or password")  # the attempt stays counted
    second_factor = False
    if row["totp_secret"] is not None:
        if body.totp is None:
            await tried.succeeded()  # the password was right: no guess to count
            raise SecondFactorRequired("this account needs its TOTP code: send it as totp")
        code = await _code_attempt(request, email, tried)  # the password was right: codes are counted now
        if not await spend_totp(request, row["id"], row["totp_secret"], body.totp):
            raise SecondFactorRequired("wrong TOTP code, or one used already: wait for the next one")
        await code.succeeded()
        second_factor = True
    await tried.succeeded()
    session_id = credentials.new_token()
    user_agent = (request.headers.get("User-Agent") or "")[:300] or None
    ttl = settings(request).session_ttl_seconds
    async with mutation(request) as m:
        created = await m.conn.fetchrow(SQL.session_insert, credentials.digest(session_id), row["id"], second_factor,
                                        client_ip(request, request.app[TRUSTED_PROXIES]), user_agent, float(ttl))
        assert created is not None
        await audit.record(m.conn, Actor(str(row["id"]), "user", actor(request).request_id), "session.create",
                           "session", created["public_id"], after={"second_factor": second_factor})
        me = await me_of(m.conn, request, row["id"], session_id, created["public_id"], created["expires_at"])
        # a retry is answered without the CSRF token (and gets no cookie): stored answers keep no secret
        response = await m.respond(json(me), stored=json(msgspec.structs.replace(me, csrf_token=None)).body)  # type: ignore[arg-type]
    response.set_cookie(SESSION_COOKIE, session_id, max_age=ttl, path="/", httponly=True, secure=True,
                        samesite="Lax")
    response.headers["Cache-Control"] = "no-store"
    return response


@routes.add("POST", "/v1/auth/logout", summary="Sign out: ends this session", tag="auth", status=204,
            policy=OWN_SIGN_IN, errors=(401, 403))
async def logout(request: web.Request) -> web.Response:
    account(request)
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id is None:
        raise InvalidInput("not signed in with a session", [{"field": "cookie.bp_session", "message": "missing"}])
    digest = credentials.digest(session_id)
    async with mutation(request) as m:
        await m.conn.fetchval(SQL.session_revoke_digest, digest)
        await audit.record(m.conn, actor(request), "session.revoke", "session", digest.hex()[:16])
        response = await m.respond(web.Response(status=204), stored=b"")
    await forget(request, sessions=[digest])
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


@routes.add("GET", "/v1/auth/me", summary="Who I am: account, roles per shop, this session and its CSRF token",
            tag="auth", response=Me, policy=YOU, errors=(401, 403))
async def get_me(request: web.Request) -> web.Response:
    _, user_id = account(request)
    session_id = request.cookies.get(SESSION_COOKIE)
    info = None if session_id is None else await session_info(request, session_id)
    async with pool(request).acquire() as conn:
        me = await me_of(conn, request, user_id, None if info is None else session_id,
                         None if info is None else info.public_id, None if info is None else info.expires_at)
    response = json(me)
    response.headers["Cache-Control"] = "no-store"
    return response


@routes.add("POST", "/v1/auth/password", summary="Change my password (my other sessions are ended)", tag="auth",
            body=PasswordChange, status=204, policy=OWN_SIGN_IN, errors=(400, 401, 403, 422, 429))
async def change_password(request: web.Request) -> web.Response:
    _, user_id = account(request)
    body = await decode_body(request, PasswordChange)
    async with pool(request).acquire() as conn:
        user = await users.load_user(conn, user_id)
        current = await conn.fetchrow(SQL.user_by_email, user.email)
    tried = await throttle.attempt(request, throttle.account_of(user.email, user_id))
    if current is None or not await asyncio.to_thread(credentials.check_password, current["password_hash"],
                                                      body.current_password):
        raise InvalidInput("password not changed", [{"field": "current_password", "message": "wrong password"}])
    await tried.succeeded()
    if why := credentials.password_problem(body.new_password, user.email):
        raise InvalidInput("password not changed", [{"field": "new_password", "message": why}])
    hashed = await asyncio.to_thread(credentials.hash_password, body.new_password)
    keep = request.cookies.get(SESSION_COOKIE)
    async with mutation(request) as m:
        if await m.conn.fetchrow(SQL.user_secrets, user_id) is None:
            raise NotFound("no such account")
        await m.conn.execute(SQL.user_set_password, user_id, hashed)
        ended = [r["id_digest"] for r in await m.conn.fetch(
            SQL.session_revoke_all, user_id, None if keep is None else credentials.digest(keep))]
        await audit.record(m.conn, actor(request), "user.password", "user", user_id,
                           after={"sessions_ended": len(ended)})
        response = await m.respond(web.Response(status=204), stored=b"")
    await forget(request, sessions=ended)
    return response


@routes.add("GET", "/v1/auth/sessions", summary="My open sessions", tag="auth", response=list[SessionOut],
            policy=YOU, errors=(401, 403))
async def list_sessions(request: web.Request) -> web.Response:
    _, user_id = account(request)
    current = request.cookies.get(SESSION_COOKIE)
    mine = None if current is None else credentials.digest(current)
    async with pool(request).acquire() as conn:
        rows = await conn.fetch(SQL.sessions_of_user, user_id)
    return json([SessionOut(id=r["public_id"], current=r["id_digest"] == mine, ip=r["ip"], user_agent=r["user_agent"],
                            second_factor=r["second_factor"], created_at=r["created_at"], expires_at=r["expires_at"])
                 for r in rows])


@routes.add("DELETE", "/v1/auth/sessions/{session_id}", summary="End one of my sessions", tag="auth", status=204,
            policy=YOU, errors=(401, 403, 404))
async def revoke_session(request: web.Request) -> web.Response:
    _, user_id = account(request)
    public_id = path_uuid(request, "session_id")
    async with pool(request).transaction() as conn:
        digest = await conn.fetchval(SQL.session_revoke, user_id, public_id)
        if digest is None:
            raise NotFound("no such session")
        await audit.record(conn, actor(request), "session.revoke", "session", public_id)
    await forget(request, sessions=[digest])
    return web.Response(status=204)


@routes.add("POST", "/v1/auth/totp/setup", summary="A new TOTP secret to add to an authenticator app (not yet on)",
            tag="auth", response=TotpSetup, policy=OWN_SIGN_IN, errors=(401, 403))
async def totp_setup(request: web.Request) -> web.Response:
    _, user_id = account(request)
    async with mutation(request) as m:
        user = await users.load_user(m.conn, user_id)
        secret = pyotp.random_base32(32)
        uri = pyotp.TOTP(secret).provisioning_uri(name=user.email or str(user_id), issuer_name=TOTP_ISSUER)
        # nothing is stored until a code proves the app holds the secret; a retry gets no secret
        return await m.respond(json(TotpSetup(secret, uri)), stored=json(TotpSetup("", "")).body)  # type: ignore[arg-type]


@routes.add("POST", "/v1/auth/totp/enable", summary="Turn the TOTP second factor on (proved with a code)",
            tag="auth", body=TotpEnable, status=204, policy=OWN_SIGN_IN, errors=(400, 401, 403, 404, 422, 429))
async def totp_enable(request: web.Request) -> web.Response:
    _, user_id = account(request)
    body = await decode_body(request, TotpEnable)
    step = totp_step(body.secret, body.code)
    if step is None:
        raise InvalidInput("second factor not turned on", [{"field": "code", "message": "wrong code for this secret"}])
    tried = await throttle.attempt(request, await _throttle_key(request, user_id))
    async with mutation(request) as m:
        row = await m.conn.fetchrow(SQL.user_secrets, user_id)
        if row is None:  # a development token names a person who has no account
            raise NotFound("no such account")
        if not await asyncio.to_thread(credentials.check_password, row["password_hash"], body.password):
            raise InvalidInput("second factor not turned on", [{"field": "password", "message": "wrong password"}])
        await m.conn.execute(SQL.user_set_totp, user_id, body.secret, step)  # the code that proved it is spent
        await audit.record(m.conn, actor(request), "user.totp.enable", "user", user_id)
        response = await m.respond(web.Response(status=204), stored=b"")
    await tried.succeeded()
    return response


@routes.add("POST", "/v1/auth/totp/disable", summary="Turn the TOTP second factor off", tag="auth",
            body=TotpDisable, status=204, policy=YOU, errors=(400, 401, 403, 404, 422, 429))
async def totp_disable(request: web.Request) -> web.Response:
    _, user_id = account(request)
    body = await decode_body(request, TotpDisable)
    key = await _throttle_key(request, user_id)
    tried = await throttle.attempt(request, key)
    async with mutation(request) as m:
        row = await m.conn.fetchrow(SQL.user_secrets, user_id)
        if row is None:  # a development token names a person who has no account
            raise NotFound("no such account")
        if row["totp_secret"] is None:
            raise InvalidInput("no second factor to turn off", [{"field": "code", "message": "TOTP is off"}])
        if not await asyncio.to_thread(credentials.check_password, row["password_hash"], body.password):
            raise InvalidInput("second factor kept", [{"field": "password", "message": "wrong password"}])
        # the password was right: the code counts against the account's TOTP budget, as at login
        code = await _code_attempt(request, key, tried)
        step = totp_step(row["totp_secret"], body.code)
        # spent like a login's code (row locked above): a code seen once does not turn the factor off later
        if step is None or await m.conn.fetchval(SQL.totp_spend, user_id, step) is None:
            raise InvalidInput("second factor kept", [{"field": "code", "message": "wrong code, or used already"}])
        await m.conn.execute(SQL.user_set_totp, user_id, None, step)
        await audit.record(m.conn, actor(request), "user.totp.disable", "user", user_id)
        response = await m.respond(web.Response(status=204), stored=b"")
    await code.succeeded()
    await tried.succeeded()
    return response


async def _code_attempt(request: web.Request, key: str, password: throttle.Attempt) -> throttle.Attempt:
    """Admit the check of a TOTP code, its password found right: refused (429) while the account's codes are
    spent, and then the right password is not counted as a guess."""
    try:
        return await throttle.code_attempt(request, key)
    except RateLimited:
        await password.succeeded()
        raise


async def _throttle_key(request: web.Request, user_id: uuid.UUID) -> str:
    """The account's key in the sign-in throttle: the one login counts under (its email)."""
    async with pool(request).acquire() as conn:
        row = await conn.fetchrow(SQL.user_by_id, user_id)
    return throttle.account_of(None if row is None else row["email"], user_id)
