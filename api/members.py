"""A shop's people: who has which role, single-use invitations, role changes and removals, and the
operators' account administration. A removal or role change holds on every API process within
seconds (the cached access of that person is dropped everywhere once the change has committed)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Literal

from aiohttp import web
from asyncpg import Record

from beanpay import audit, queries
from beanpay.access import MAY_INVITE
from beanpay.api.accounts import credentials, mail, throttle, users
from beanpay.api.accounts.principals import forget
from beanpay.api.accounts.schemas import (
    Accepted,
    Invitation,
    InvitationAccept,
    InvitationCreate,
    InvitationCreated,
    Member,
    MemberPut,
    UserCreate,
    UserOut,
)
from beanpay.api.auth import user_out
from beanpay.api.body import decode_body
from beanpay.api.guard import OPERATORS_2FA, allow, needs, public
from beanpay.api.http import actor, json, path_uuid, who
from beanpay.api.idempotency import mutation
from beanpay.api.routing import Routes
from beanpay.api.rows import to_struct, to_structs
from beanpay.api.shops import fetch_shop
from beanpay.api.state import pool, settings
from beanpay.errors import Conflict, Forbidden, Gone, InvalidInput, NotFound

routes = Routes()
SQL = queries.load("beanpay.api", "accounts.sql")
MEMBERS = needs("members:manage", "the shop's owners (managers invite staff), operators")
SHOWN_ONCE = "[shown once, when the invitation was made]"
SENT_BY_EMAIL = "[sent to the invitee's email only]"


def _actor_role(request: web.Request, roles: dict[uuid.UUID, str]) -> tuple[bool, str | None]:
    """Whether the actor is an operator, and its role at the shop as `roles` says: the shop's rows locked by
    this transaction, not the grants the request was let in with, so a role taken away a moment ago (its
    change committed while this request waited for the lock) gives nothing."""
    p = who(request)
    return p.operator, roles.get(p.id) if p.kind == "user" and p.id is not None else None


def _may_give(request: web.Request, roles: dict[uuid.UUID, str], role: str) -> None:
    """Owners give any role, managers only staff; operators anything."""
    operator, mine = _actor_role(request, roles)
    if not operator and role not in MAY_INVITE.get(mine or "", frozenset()):
        raise Forbidden(f"a {mine or 'non-member'} may not give the {role} role")


def _may_change(request: web.Request, roles: dict[uuid.UUID, str], current: str) -> None:
    """The same bound for whom one changes or removes: only a person whose current role one could give."""
    operator, mine = _actor_role(request, roles)
    if not operator and current not in MAY_INVITE.get(mine or "", frozenset()):
        raise Forbidden(f"a {mine or 'non-member'} may not change or remove a {current}")


@routes.add("GET", "/v1/shops/{shop_id}/members", summary="The shop's people and their roles", tag="members",
            response=list[Member], policy=MEMBERS, errors=(401, 403))
async def list_members(request: web.Request) -> web.Response:
    shop_id = path_uuid(request, "shop_id")
    allow(request, shop_id)
    async with pool(request).acquire() as conn:
        rows = await conn.fetch(SQL.grants_of_shop, shop_id)
    return json(to_structs(rows, Member))


@routes.add("PUT", "/v1/shops/{shop_id}/members/{user_id}", summary="Change a member's role", tag="members",
            body=MemberPut, response=Member, policy=MEMBERS, errors=(400, 401, 403, 404, 409, 422))
async def put_member(request: web.Request) -> web.Response:
    shop_id, user_id = path_uuid(request, "shop_id"), path_uuid(request, "user_id")
    allow(request, shop_id)
    body = await decode_body(request, MemberPut)
    async with pool(request).transaction() as conn:
        roles = await users.shop_roles(conn, shop_id)  # locked: changes at a shop queue
        _may_give(request, roles, body.role)
        current = roles.get(user_id)
        if current is None:
            raise NotFound("this person has no role at this shop; invite them")
        _may_change(request, roles, current)
        await users.grant(conn, user_id=user_id, shop_id=shop_id, role=body.role, by=who(request).id,
                          actor=actor(request))
        row = next(r for r in await conn.fetch(SQL.grants_of_shop, shop_id) if r["user_id"] == user_id)
    await forget(request, users=[user_id])
    return json(to_struct(row, Member))


@routes.add("DELETE", "/v1/shops/{shop_id}/members/{user_id}", summary="Remove someone from the shop",
            tag="members", status=204, policy=MEMBERS, errors=(401, 403, 404, 409))
async def remove_member(request: web.Request) -> web.Response:
    shop_id, user_id = path_uuid(request, "shop_id"), path_uuid(request, "user_id")
    allow(request, shop_id)
    async with pool(request).transaction() as conn:
        roles = await users.shop_roles(conn, shop_id)  # locked: changes at a shop queue
        role = roles.get(user_id)
        if role is not None:
            _may_change(request, roles, role)  # a manager removes staff only
        await users.revoke_grant(conn, user_id=user_id, shop_id=shop_id, actor=actor(request))
    await forget(request, users=[user_id])
    return web.Response(status=204)


@routes.add("POST", "/v1/shops/{shop_id}/invitations",
            summary="Invite someone: the link goes to their email (with mail set up), else it is shown once",
            tag="members", body=InvitationCreate, response=InvitationCreated, status=201,
            policy=MEMBERS, errors=(400, 401, 403, 404, 422, 503))
async def invite(request: web.Request) -> web.Response:
    shop_id = path_uuid(request, "shop_id")
    body = await decode_body(request, InvitationCreate)
    p = allow(request, shop_id)
    conf = settings(request)
    emailed = mail.sends_invitations(conf)
    token = credentials.new_token()
    async with mutation(request) as m:
        shop = await fetch_shop(m.conn, shop_id)
        _may_give(request, await users.shop_roles(m.conn, shop_id), body.role)  # as the locked rows say
        row = await m.conn.fetchrow(SQL.invitation_insert, credentials.digest(token), shop_id,
                                    users.normalize_email(body.email), body.role, p.id if p.kind == "user" else None,
                                    float(conf.invite_ttl_seconds))
        assert row is not None
        made = to_struct(row, Invitation)
        delivery: Literal["email", "shown"] = "email" if emailed else "shown"
        await audit.record(m.conn, actor(request), "invitation.create", "invitation", made.id,
                           after={"email": made.email, "role": made.role, "delivery": delivery})
        fields = {f: getattr(made, f) for f in Invitation.__struct_fields__}
        link = f"/invitations/{token}"
        if emailed:
            # the inviter never sees the token: whoever holds it could make the invitee's account themselves.
            # Sent before the commit: a refused message keeps nothing (a commit failing after it leaves a dead link)
            await mail.send_invitation(conf, to=made.email, shop_name=shop.name, role=made.role,
                                       link=conf.links_base + link)
            sent = InvitationCreated(**fields, token=SENT_BY_EMAIL, link=SENT_BY_EMAIL, delivery=delivery)
            return await m.respond(json(sent, status=201))
        shown = InvitationCreated(**fields, token=token, link=link, delivery=delivery)
        kept = InvitationCreated(**fields, token=SHOWN_ONCE, link=SHOWN_ONCE, delivery=delivery)
        return await m.respond(json(shown, status=201), stored=json(kept, status=201).body)  # type: ignore[arg-type]


@routes.add("GET", "/v1/shops/{shop_id}/invitations", summary="The shop's invitations still open", tag="members",
            response=list[Invitation], policy=MEMBERS, errors=(401, 403))
async def list_invitations(request: web.Request) -> web.Response:
    shop_id = path_uuid(request, "shop_id")
    allow(request, shop_id)
    async with pool(request).acquire() as conn:
        rows = await conn.fetch(SQL.invitations_of_shop, shop_id)
    return json(to_structs(rows, Invitation))


@routes.add("DELETE", "/v1/shops/{shop_id}/invitations/{invitation_id}", summary="Withdraw an invitation",
            tag="members", status=204, policy=MEMBERS, errors=(401, 403, 404))
async def withdraw_invitation(request: web.Request) -> web.Response:
    shop_id, invitation_id = path_uuid(request, "shop_id"), path_uuid(request, "invitation_id")
    allow(request, shop_id)
    async with pool(request).transaction() as conn:
        if await conn.fetchval(SQL.invitation_revoke, invitation_id, shop_id) is None:
            raise NotFound("no open invitation with this id")
        await audit.record(conn, actor(request), "invitation.revoke", "invitation", invitation_id)
    return web.Response(status=204)


@routes.add("POST", "/v1/invitations/accept",
            summary="Accept an invitation: makes the account if the email has none; joins an existing account "
                    "signed in as it (or with its password)",
            tag="members", body=InvitationAccept, response=Accepted, policy=public(),
            errors=(400, 401, 403, 404, 409, 410, 422, 429))
async def accept_invitation(request: web.Request) -> web.Response:
    """Holding the token proves the email for a new account (with mail set up, only the email received it).
    An existing account joins only by being signed in as it, or with its password under the sign-in
    throttle; an account with a second factor only signed in, so a password alone never adds it anywhere."""
    body = await decode_body(request, InvitationAccept)
    digest = credentials.digest(body.token)
    async with pool(request).acquire() as conn:
        state = await conn.fetchrow(SQL.invitation_state, digest)
        if state is None:
            raise NotFound("no such invitation")
        if state["used"] or state["revoked"] or state["expired"]:
            why = "used" if state["used"] else "withdrawn" if state["revoked"] else "expired"
            raise Gone(f"this invitation was {why}; ask for a new one")
        existing = await conn.fetchrow(SQL.user_by_email, state["email"])
    p = who(request)
    hashed = None
    if existing is None:
        if body.password is None:
            raise InvalidInput("invitation not accepted",
                               [{"field": "password", "message": "choose a password for the new account"}])
        if problem := credentials.password_problem(body.password, state["email"]):
            raise InvalidInput("password refused", [{"field": "password", "message": problem}])
        hashed = await asyncio.to_thread(credentials.hash_password, body.password)
    elif existing["disabled_at"] is not None:
        raise Forbidden("the account of this email is disabled")
    elif not (p.kind == "user" and p.id == existing["id"]):
        await _prove_account(request, existing, body.password)
    async with mutation(request) as m:
        invitation = await m.conn.fetchrow(SQL.invitation_accept, digest, None)
        if invitation is None:
            raise Gone("this invitation was just used")
        if hashed is not None:
            created = await m.conn.fetchrow(SQL.user_insert, invitation["email"], body.display_name, hashed, False)
            assert created is not None  # an account made meanwhile for the email: the unique index's 409
            user_id = created["id"]
            await audit.record(m.conn, actor(request), "user.create", "user", user_id,
                               after={"email": invitation["email"], "invitation": str(invitation["id"])})
        else:
            assert existing is not None
            user_id = existing["id"]
        held = (await users.shop_roles(m.conn, invitation["shop_id"])).get(user_id)
        if held is not None:  # an invitation never changes a role someone already has (nor lowers an owner)
            raise Conflict(f"this account is already {held} at this shop; ask its owner to change the role")
        await users.grant(m.conn, user_id=user_id, shop_id=invitation["shop_id"], role=invitation["role"],
                          by=invitation["invited_by"], actor=actor(request))
        await m.conn.execute(SQL.invitation_accepted_by, invitation["id"], user_id)
        response = await m.respond(json(Accepted(user_id, invitation["shop_id"], invitation["role"],
                                                 existing is None)))
    await forget(request, users=[user_id])
    return response


async def _prove_account(request: web.Request, existing: Record, password: str | None) -> None:
    """The password of the existing account, checked under the sign-in throttle (a 422 if wrong)."""
    if existing["totp_secret"] is not None:
        raise Forbidden("this account has a second factor: sign in to it, then accept the invitation")
    if password is None:
        raise InvalidInput("invitation not accepted", [{"field": "password", "message": (
            "an account with this email exists: sign in to it first, or send its password")}])
    tried = await throttle.attempt(request, existing["email"])
    if not await asyncio.to_thread(credentials.check_password, existing["password_hash"], password):
        raise InvalidInput("invitation not accepted",
                           [{"field": "password", "message": "the password of the existing account"}])
    await tried.succeeded()


@routes.add("POST", "/v1/users", summary="Create an account (operators, with their second factor)", tag="members",
            body=UserCreate, response=UserOut, status=201, policy=OPERATORS_2FA, errors=(400, 401, 403, 409, 422))
async def create_user(request: web.Request) -> web.Response:
    body = await decode_body(request, UserCreate)
    hashed = await asyncio.to_thread(users.new_password_hash, body.password, body.email)
    async with mutation(request) as m:
        user = await users.create_user(m.conn, email=body.email, password_hash=hashed,
                                       display_name=body.display_name, operator=body.operator, actor=actor(request))
        return await m.respond(json(user_out(user), status=201))


@routes.add("POST", "/v1/users/{user_id}/disable",
            summary="Disable an account and end its sessions (operators, with their second factor)",
            tag="members", response=UserOut, policy=OPERATORS_2FA, errors=(401, 403, 404, 409))
async def disable_user(request: web.Request) -> web.Response:
    user_id = path_uuid(request, "user_id")
    async with mutation(request) as m:
        if await m.conn.fetchval(SQL.user_disable, user_id) is None:
            await users.load_user(m.conn, user_id)  # 404 if there is none
            raise Conflict("the account is already disabled")
        ended = [r["id_digest"] for r in await m.conn.fetch(SQL.session_revoke_all, user_id, None)]
        await audit.record(m.conn, actor(request), "user.disable", "user", user_id,
                           after={"sessions_ended": len(ended)})
        response = await m.respond(json(user_out(await users.load_user(m.conn, user_id))))
    await forget(request, users=[user_id], sessions=ended)
    return response
