"""Wire types of accounts, sessions, members, invitations and API keys."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from msgspec import Meta, Struct

from beanpay.api.schemas import Email, Input

Password = Annotated[str, Meta(min_length=1, max_length=256)]
Totp = Annotated[str, Meta(pattern=r"^\d{6}$", description="the 6-digit code of the authenticator app")]
ShopRole = Literal["owner", "manager", "staff"]
KeyName = Annotated[str, Meta(min_length=1, max_length=100)]


class Login(Input):
    email: Annotated[str, Meta(min_length=3, max_length=320)]
    password: Password
    totp: Totp | None = None


class UserOut(Struct):
    id: uuid.UUID
    email: str | None
    display_name: str | None
    operator: bool
    totp: bool
    created_at: dt.datetime


class Grant(Struct):
    shop_id: uuid.UUID
    role: str


class Me(Struct):
    user: UserOut
    grants: list[Grant]
    session_id: uuid.UUID | None
    csrf_token: str | None  # send it as X-CSRF-Token on every write made with the session cookie
    expires_at: dt.datetime | None


class PasswordChange(Input):
    current_password: Password
    new_password: Password


class SessionOut(Struct):
    id: uuid.UUID
    current: bool
    ip: str | None
    user_agent: str | None
    second_factor: bool
    created_at: dt.datetime
    expires_at: dt.datetime


class TotpSetup(Struct):
    secret: str  # base32; shown to be entered or scanned, then confirmed with a code
    otpauth_uri: str


class TotpEnable(Input):
    secret: Annotated[str, Meta(pattern=r"^[A-Z2-7]{32}$")]
    code: Totp
    password: Password


class TotpDisable(Input):
    code: Totp
    password: Password


class Member(Struct):
    user_id: uuid.UUID
    email: str | None
    display_name: str | None
    role: str
    granted_at: dt.datetime


class MemberPut(Input):
    role: ShopRole


class InvitationCreate(Input):
    email: Email
    role: ShopRole


class Invitation(Struct):
    id: uuid.UUID
    shop_id: uuid.UUID
    email: str
    role: str
    created_at: dt.datetime
    expires_at: dt.datetime


class InvitationCreated(Invitation, kw_only=True):
    # shown once, when no mail server is set up: the invitee accepts with it (the link is /invitations/{token});
    # with one, the link goes to the email only and these say so
    token: str
    link: str
    delivery: Literal["email", "shown"] = "shown"


class InvitationAccept(Input):
    token: Annotated[str, Meta(min_length=20, max_length=100)]
    # the new account's password; for an existing account, its password unless signed in as it
    password: Password | None = None
    display_name: Annotated[str, Meta(max_length=100)] | None = None


class Accepted(Struct):
    user_id: uuid.UUID
    shop_id: uuid.UUID
    role: str
    created_account: bool


class ApiKeyCreate(Input):
    name: KeyName
    permissions: Annotated[list[str], Meta(min_length=1, max_length=30)]
    shop_ids: Annotated[list[uuid.UUID], Meta(min_length=1, max_length=100)]
    expires_at: dt.datetime | None = None


class ApiKey(Struct):
    id: uuid.UUID
    prefix: str
    name: str
    permissions: list[str]
    shop_ids: list[uuid.UUID]
    created_at: dt.datetime
    expires_at: dt.datetime | None
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None


class ApiKeyCreated(ApiKey, kw_only=True):
    key: str  # shown once: send it as Authorization: Bearer bp_...


class ApiKeyQuery(Input):
    shop_id: uuid.UUID | None = None


class UserCreate(Input):
    email: Email
    password: Password
    display_name: Annotated[str, Meta(max_length=100)] | None = None
    operator: bool = False
