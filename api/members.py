"""A shop's people: who has which role, single-use invitations, role changes and removals, and the
operators' account administration. A removal or role change holds on every API process within
seconds (the cached access of that person is dropped everywhere once the change has committed)."""

from __future__ import annotations

import asyncio
import uuid

from aiohttp import web

from beanpay import audit, queries
from beanpay.access import MAY_INVITE
from beanpay.api.accounts import credentials, users
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
from beanpay.api.guard import OPERATORS, allow, needs, public
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


def _may_give(request: web.Request, shop_id: uuid.UUID, role: str) -> None:
    """Owners give any role, managers only staff; operators anything."""
    p = who(request)
    if p.operator:
        return
    mine = p.grants.get(shop_id)
    if mine is None or role not in MAY_INVITE.get(mine, frozenset()):
        raise Forbidden(f"a {mine or 'non-member'} may not give the {role} role")


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
    _may_give(request, shop_id, body.role)
    async with pool(request).transaction() as conn:
        if await conn.fetchval(SQL.grant_of, user_id, shop_id) is None:
            raise NotFound("this person has no role at this shop; invite them")
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
        role = await conn.fetchval(SQL.grant_of, user_id, shop_id)
        if role is not None:
            _may_give(request, shop_id, role)  # a manager removes staff only
        await users.revoke_grant(conn, user_id=user_id, shop_id=shop_id, actor=actor(request))
    await forget(request, users=[user_id])
    return web.Response(status=204)


@routes.add("POST", "/v1/shops/{shop_id}/invitations", summary="Invite someone (the link is shown once)",
            tag="members", body=InvitationCreate, response=InvitationCreated, status=201,
            policy=MEMBERS, errors=(400, 401, 403, 404, 422))
async def invite(request: web.Request) -> web.Response:
    shop_id = path_uuid(request, "shop_id")
    body = await decode_body(request, InvitationCreate)
    p = allow(request, shop_id)
    _may_give(request, shop_id, body.role)
    token = credentials.new_token()
    async with mutation(request) as m:
        await fetch_shop(m.conn, shop_id)
        row = await m.conn.fetchrow(SQL.invitation_insert, credentials.digest(token), shop_id,
                                    users.normalize_email(body.email), body.role, p.id if p.kind == "user" else None,
                                    float(settings(request).invite_ttl_seconds))
        assert row is not None
        made = to_struct(row, Invitation)
        await audit.record(m.conn, actor(request), "invitation.create", "invitation", made.id,
                           after={"email": made.email, "role": made.role})
        fields = {f: getattr(made, f) for f in Invitation.__struct_fields__}
        shown = InvitationCreated(**fields, token=token, link=f"/invitations/{token}")
        kept = InvitationCreated(**fields, token=SHOWN_ONCE, link=SHOWN_ONCE)
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


@routes.add("POST", "/v1/invitations/accept", summary="Accept an invitation: creates the account if it is new",
            tag="members", body=InvitationAccept, response=Accepted, policy=public(),
            errors=(400, 401, 409, 410, 422, 429))
async def accept_invitation(request: web.Request) -> web.Response:
    body = await decode_body(request, InvitationAccept)
    digest = credentials.digest(body.token)
    async with pool(request).acquire() as conn:
        state = await conn.fetchrow(SQL.invitation_state, digest)
    if state is None:
        raise NotFound("no such invitation")
    if state["used"] or state["revoked"] or state["expired"]:
        why = "used" if state["used"] else "withdrawn" if state["revoked"] else "expired"
        raise Gone(f"this invitation was {why}; ask for a new one")
    hashed = await asyncio.to_thread(credentials.hash_password, body.password)
    async with mutation(request) as m:
        invitation = await m.conn.fetchrow(SQL.invitation_accept, digest, None)
        if invitation is None:
            raise Gone("this invitation was just used")
        existing = await m.conn.fetchrow(SQL.user_by_email, invitation["email"])
        if existing is None:
            if problem := credentials.password_problem(body.password, invitation["email"]):
                raise InvalidInput("password refused", [{"field": "password", "message": problem}])
            created = await m.conn.fetchrow(SQL.user_insert, invitation["email"], body.display_name, hashed, False)
            assert created is not None
            user_id = created["id"]
            await audit.record(m.conn, actor(request), "user.create", "user", user_id,
                               after={"email": invitation["email"], "invitation": str(invitation["id"])})
        else:
            ok = await asyncio.to_thread(credentials.check_password, existing["password_hash"], body.password)
            if not ok:
                raise InvalidInput("invitation not accepted",
                                   [{"field": "password", "message": "the password of the existing account"}])
            user_id = existing["id"]
        await users.grant(m.conn, user_id=user_id, shop_id=invitation["shop_id"], role=invitation["role"],
                          by=invitation["invited_by"], actor=actor(request))
        response = await m.respond(json(Accepted(user_id, invitation["shop_id"], invitation["role"],
                                                 existing is None)))
    await forget(request, users=[user_id])
    return response


@routes.add("POST", "/v1/users", summary="Create an account (operators)", tag="members", body=UserCreate,
            response=UserOut, status=201, policy=OPERATORS, errors=(400, 401, 403, 409, 422))
async def create_user(request: web.Request) -> web.Response:
    body = await decode_body(request, UserCreate)
    hashed = await asyncio.to_thread(users.new_password_hash, body.password, body.email)
    async with mutation(request) as m:
        user = await users.create_user(m.conn, email=body.email, password_hash=hashed,
                                       display_name=body.display_name, operator=body.operator, actor=actor(request))
        return await m.respond(json(user_out(user), status=201))


@routes.add("POST", "/v1/users/{user_id}/disable", summary="Disable an account and end its sessions (operators)",
            tag="members", response=UserOut, policy=OPERATORS, errors=(401, 403, 404, 409))
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
