"""Accounts: create one (the CLI bootstraps the first operator), check a login, change a password,
grant and remove roles at a shop. Each change is one transaction with its audit row; callers drop
the cached credentials (`principals.forget`) once it has committed."""

from __future__ import annotations

import datetime as dt
import uuid

import msgspec

from beanpay import audit, queries
from beanpay.access import MAY_INVITE
from beanpay.api.accounts import credentials
from beanpay.db import Connection
from beanpay.errors import Conflict, InvalidInput, NotFound

SQL = queries.load("beanpay.api", "accounts.sql")


class UserRow(msgspec.Struct, frozen=True):
    id: uuid.UUID
    email: str | None
    display_name: str | None
    operator: bool
    totp: bool
    disabled_at: dt.datetime | None
    created_at: dt.datetime


_grants = msgspec.json.Decoder(dict[uuid.UUID, str])


async def grants_of(conn: Connection, user_id: uuid.UUID) -> dict[uuid.UUID, str]:
    row = await conn.fetchrow(SQL.user_access, user_id)
    return {} if row is None else _grants.decode(row["grants"])


def normalize_email(email: str) -> str:
    return email.strip().lower()


def new_password_hash(password: str, email: str) -> str:
    """The hash of an acceptable new password (tens of ms of CPU: run it off the event loop)."""
    if why := credentials.password_problem(password, normalize_email(email)):
        raise InvalidInput("password refused", [{"field": "password", "message": why}])
    return credentials.hash_password(password)


async def create_user(conn: Connection, *, email: str, password_hash: str, display_name: str | None,
                      operator: bool, actor: audit.Actor) -> UserRow:
    """A new account (a taken email is the unique index's 409)."""
    email = normalize_email(email)
    row = await conn.fetchrow(SQL.user_insert, email, display_name, password_hash, operator)
    assert row is not None
    user = UserRow(**dict(row))
    await audit.record(conn, actor, "user.create", "user", user.id, after={"email": email, "operator": operator})
    return user


async def load_user(conn: Connection, user_id: uuid.UUID) -> UserRow:
    row = await conn.fetchrow(SQL.user_by_id, user_id)
    if row is None:
        raise NotFound("no such user")
    return UserRow(**dict(row))


async def shop_roles(conn: Connection, shop_id: uuid.UUID) -> dict[uuid.UUID, str]:
    """Every role at the shop, locked until the transaction ends (changes at one shop run one at a time)."""
    return {r["user_id"]: r["role"] for r in await conn.fetch(SQL.shop_grants_lock, shop_id)}


def _keeps_an_owner(roles: dict[uuid.UUID, str], user_id: uuid.UUID) -> None:
    if roles.get(user_id) == "owner" and not any(r == "owner" for u, r in roles.items() if u != user_id):
        raise Conflict("a shop keeps at least one owner; make someone else owner first")


async def grant(conn: Connection, *, user_id: uuid.UUID, shop_id: uuid.UUID, role: str, by: uuid.UUID | None,
                actor: audit.Actor) -> None:
    roles = await shop_roles(conn, shop_id)
    before = roles.get(user_id)
    if role != "owner":
        _keeps_an_owner(roles, user_id)
    await conn.fetchrow(SQL.grant_upsert, user_id, shop_id, role, by)
    await audit.record(conn, actor, "grant.put", "shop_grant", f"{shop_id}/{user_id}",
                       before=None if before is None else {"role": before}, after={"role": role})
    await _withdraw_invitations(conn, shop_id=shop_id, user_id=user_id, role=role, actor=actor)


async def revoke_grant(conn: Connection, *, user_id: uuid.UUID, shop_id: uuid.UUID, actor: audit.Actor) -> None:
    roles = await shop_roles(conn, shop_id)
    before = roles.get(user_id)
    if before is None:
        raise NotFound("this person has no role at this shop")
    _keeps_an_owner(roles, user_id)
    await conn.fetchval(SQL.grant_delete, user_id, shop_id)
    await audit.record(conn, actor, "grant.delete", "shop_grant", f"{shop_id}/{user_id}", before={"role": before})
    await _withdraw_invitations(conn, shop_id=shop_id, user_id=user_id, role=None, actor=actor)


async def _withdraw_invitations(conn: Connection, *, shop_id: uuid.UUID, user_id: uuid.UUID, role: str | None,
                                actor: audit.Actor) -> None:
    """A person's open invitations to the shop for roles they may no longer give (none, once removed): a
    removed manager does not come back through the staff invitation they made for themselves."""
    still = sorted(MAY_INVITE.get(role, frozenset()) if role is not None else frozenset())
    withdrawn = await conn.fetch(SQL.invitations_withdraw_of, shop_id, user_id, still)
    await audit.record_many(conn, actor, [audit.Entry("invitation.revoke", "invitation", r["id"],
                                                      after={"why": "its maker may no longer give the role"})
                                          for r in withdrawn])


async def by_email(conn: Connection, email: str) -> uuid.UUID | None:
    """The account of an email (normalized), if there is one."""
    row = await conn.fetchrow(SQL.user_by_email, email)
    return None if row is None else row["id"]


async def disable(conn: Connection, user_id: uuid.UUID) -> int | None:
    """Disable an account and end its sessions: how many ended (None: it was disabled already)."""
    if await conn.fetchval(SQL.user_disable, user_id) is None:
        return None
    return len(await conn.fetch(SQL.session_revoke_all, user_id, None))
