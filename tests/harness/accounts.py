"""People signing in to beanpay from outside, for the accounts tests and the account attacks: a browser (its
session cookie and CSRF token, sent by hand: the test client speaks plain HTTP and the cookie is Secure),
accounts made by an operator, people with a role at a shop, and an app with rate limits on behind a trusted
proxy, where each test signs in from client addresses of its own so no test's throttle meets another's."""

from __future__ import annotations

import ipaddress
import secrets
import time
import uuid
from typing import Any

import msgspec
import pyotp

from beanpay.config import Settings
from tests import secrets_watch
from tests.conftest import Tokens
from tests.integration.helpers import make_shop

PASSWORD = "correct horse battery staple"
WRONG = "not the password at all"


def address() -> str:
    """A client address of the test's own, on an IPv6 /64 of its own (a network is one client to the limits;
    the app trusts loopback as a proxy and reads X-Forwarded-For)."""
    return f"2001:db8:{secrets.token_hex(2)}:{secrets.token_hex(2)}::{secrets.token_hex(2)}"


def ipv4() -> str:
    """An IPv4 client address of the test's own (198.18.0.0/15, the benchmarking range)."""
    return f"198.{18 + secrets.randbelow(2)}.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}"


def neighbour(ip: str) -> str:
    """Another address in the same IPv6 /64 as `ip` (its last 64 bits chosen afresh)."""
    network = ipaddress.ip_network(f"{ip}/64", strict=False)
    return str(network.network_address + secrets.randbits(64))


async def make_app(settings: Settings, aiohttp_client: Any, **overrides: Any) -> Any:
    from beanpay.api.app import init_app

    conf = msgspec.structs.replace(settings, **{"trusted_proxies": ["127.0.0.1/32", "::1/128"], "rate_limits": True,
                                                **overrides})
    return await aiohttp_client(init_app(conf))


class Person:
    """A browser at one client address."""

    def __init__(self, api: Any, ip: str | None = None) -> None:
        self.api, self.ip = api, ip or address()
        self.session: str | None = None
        self.csrf: str | None = None
        self.me: dict[str, Any] = {}

    @property
    def user_id(self) -> str:
        return str(self.me["user"]["id"])

    def headers(self, *, csrf: bool = True) -> dict[str, str]:
        found = {"X-Forwarded-For": self.ip}
        if self.session:
            found["Cookie"] = f"bp_session={self.session}"
        if csrf and self.csrf:
            found["X-CSRF-Token"] = self.csrf
        return found

    async def login(self, email: str, password: str = PASSWORD, totp: str | None = None) -> Any:
        body: dict[str, Any] = {"email": email, "password": password}
        if totp is not None:
            body["totp"] = totp
        resp = await self.api.post("/v1/auth/login", json=body, headers={"X-Forwarded-For": self.ip})
        if resp.status == 200:
            morsel = resp.cookies["bp_session"]
            assert morsel["httponly"] and morsel["secure"] and morsel["samesite"] == "Lax"
            self.session = morsel.value
            self.me = await resp.json()
            self.csrf = self.me["csrf_token"]
            secrets_watch.watch(self.session, password)
        return resp

    async def call(self, method: str, path: str, *, csrf: bool = True, **kw: Any) -> Any:
        return await self.api.request(method, path, headers={**self.headers(csrf=csrf), **kw.pop("headers", {})},
                                      **kw)


async def new_account(api: Any, tokens: Tokens, *, operator: bool = False) -> tuple[str, str]:
    """A fresh account (email, id) with PASSWORD, made by an operator."""
    email = f"{uuid.uuid4().hex[:10]}@example.com"
    resp = await api.post("/v1/users", json={"email": email, "password": PASSWORD, "operator": operator},
                          headers=tokens.operator)
    assert resp.status == 201, await resp.text()
    secrets_watch.watch(PASSWORD)
    return email, str((await resp.json())["id"])


async def grant(db: Any, user_id: str, shop_id: str, role: str) -> None:
    """A role given straight in the database (before the person signs in: nothing of theirs is cached yet)."""
    await db.execute("INSERT INTO shop_grants (user_id, shop_id, role) VALUES ($1, $2, $3)", uuid.UUID(user_id),
                     uuid.UUID(shop_id), role)


async def member(api: Any, tokens: Tokens, db: Any, shop_id: str, role: str) -> Person:
    """A person with `role` at the shop, signed in from an address of their own."""
    email, user_id = await new_account(api, tokens)
    await grant(db, user_id, shop_id, role)
    person = Person(api)
    resp = await person.login(email)
    assert resp.status == 200, await resp.text()
    return person


async def shop_with(api: Any, tokens: Tokens, db: Any, *roles: str) -> tuple[str, list[Person]]:
    """A fresh shop and one signed-in person for each of `roles`."""
    shop_id = str((await make_shop(api, tokens))["id"])
    return shop_id, [await member(api, tokens, db, shop_id, role) for role in roles]


async def with_totp(db: Any, user_id: str) -> pyotp.TOTP:
    """Turns the account's second factor on straight in the database; the authenticator that holds it."""
    secret = pyotp.random_base32(32)
    await db.execute("UPDATE users SET totp_secret = $2 WHERE id = $1", uuid.UUID(user_id), secret)
    return pyotp.TOTP(secret)


def wrong_code(totp: pyotp.TOTP) -> str:
    """A code that is not the account's at any time step near now (it stays wrong while the test runs)."""
    now = int(time.time())
    near = {totp.at(now + 30 * d) for d in range(-4, 5)}
    while (code := f"{secrets.randbelow(10**6):06d}") in near:
        pass
    return code
