"""Revoking a session, an API key, a grant or a user holds on every API process within 5 s: two real
`beanpay api` processes share the database and Redis; each has cached the credential before it is
revoked through the other."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from beanpay.config import Settings
from tests import secrets_watch
from tests.bench.local import free_port
from tests.conftest import Tokens
from tests.harness.processes import stop_processes

BEANPAY = str(Path(sys.executable).with_name("beanpay"))
PASSWORD = "correct horse battery staple"
WITHIN = 5.0


@pytest.fixture
async def two_apis(settings: Settings, tmp_path: Path) -> AsyncIterator[list[str]]:
    ports = [free_port(), free_port()]
    procs = []
    for port in ports:
        env = {**os.environ, "BEANPAY_ENV": "test", "BEANPAY_DATABASE_URL": settings.dsn,
               "BEANPAY_STATE_DIR": settings.state_dir, "BEANPAY_REDIS_PORT": str(settings.redis_port),
               "BEANPAY_JWT_SECRET": settings.jwt_secret or "", "BEANPAY_API_PORT": str(port),
               "BEANPAY_LOG_LEVEL": "warning", "BEANPAY_RATE_LIMITS": "false"}
        log = (tmp_path / f"api-{port}.log").open("wb")
        procs.append(subprocess.Popen([BEANPAY, "api"], env=env, stdout=log, stderr=subprocess.STDOUT))
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    try:
        async with aiohttp.ClientSession() as http:
            deadline = time.monotonic() + 60
            for url in urls:
                while True:
                    try:
                        async with http.get(f"{url}/readyz") as r:
                            if r.status == 200:
                                break
                    except aiohttp.ClientError:
                        pass
                    assert time.monotonic() < deadline, "the API processes did not start"
                    await asyncio.sleep(0.2)
        yield urls
    finally:
        assert not stop_processes(procs), "an API process did not stop on SIGTERM"
        secrets_watch.LINES.extend(_lines(tmp_path))  # the processes' logs join the run's secret scan


def _lines(folder: Path) -> list[str]:
    return [line for f in folder.glob("api-*.log") for line in f.read_text(errors="replace").splitlines()]


async def refused_everywhere(http: aiohttp.ClientSession, urls: list[str], path: str,
                             headers: dict[str, str]) -> float:
    """Seconds until every process refuses (401/403) the credential."""
    started = time.monotonic()
    pending = set(urls)
    while pending:
        for url in list(pending):
            async with http.get(f"{url}{path}", headers=headers) as r:
                if r.status in (401, 403):
                    pending.discard(url)
        if time.monotonic() - started > WITHIN + 5:
            break
        await asyncio.sleep(0.05)
    assert not pending, f"still admitted after {time.monotonic() - started:.1f} s by {pending}"
    return time.monotonic() - started


async def test_revocations_hold_on_every_process_within_5_s(two_apis: list[str], tokens: Tokens,
                                                            settings: Settings) -> None:
    a, b = two_apis
    async with aiohttp.ClientSession() as http:
        async def call(method: str, url: str, path: str, **kw: object) -> tuple[int, dict[str, object]]:
            async with http.request(method, f"{url}{path}", **kw) as r:  # type: ignore[arg-type]
                return r.status, (await r.json() if r.content_type == "application/json" else {})

        _, shop = await call("POST", a, "/v1/shops", json={"name": "Revoke", "address": "1 Lane"},
                             headers=tokens.operator)
        emails = {role: f"{role}-{uuid.uuid4().hex[:8]}@example.com" for role in ("owner", "staff")}
        ids = {}
        for role, email in emails.items():
            status, user = await call("POST", a, "/v1/users", json={"email": email, "password": PASSWORD},
                                      headers=tokens.operator)
            assert status == 201
            ids[role] = user["id"]
        # the operator's CLI makes the first owner; the owner invites staff
        proc = await asyncio.create_subprocess_exec(
            BEANPAY, "users", "grant", "--email", emails["owner"], "--shop", str(shop["id"]), "--role", "owner",
            env={**os.environ, "BEANPAY_ENV": "test", "BEANPAY_DATABASE_URL": settings.dsn,
                 "BEANPAY_STATE_DIR": settings.state_dir, "BEANPAY_LOG_LEVEL": "warning"},
            stdout=asyncio.subprocess.PIPE)
        out, _ = await proc.communicate()
        assert proc.returncode == 0 and b"is now owner" in out
        sessions = {}
        for role in ("owner", "staff"):
            if role == "staff":
                status, invitation = await call("POST", a, f"/v1/shops/{shop['id']}/invitations",
                                                json={"email": emails["staff"], "role": "staff"},
                                                headers=sessions["owner"])
                assert status == 201, invitation
                status, _ = await call("POST", b, "/v1/invitations/accept",
                                       json={"token": invitation["token"], "password": PASSWORD})
                assert status == 200
            async with http.post(f"{a}/v1/auth/login", json={"email": emails[role], "password": PASSWORD}) as r:
                assert r.status == 200, await r.text()
                me = await r.json()
                sessions[role] = {"Cookie": f"bp_session={r.cookies['bp_session'].value}",
                                  "X-CSRF-Token": me["csrf_token"]}
        status, made = await call("POST", b, "/v1/api-keys", headers=sessions["owner"],
                                  json={"name": "till", "permissions": ["supplies:read"], "shop_ids": [shop["id"]]})
        assert status == 201, made
        key = {"Authorization": f"Bearer {made['key']}"}
        supplies = f"/v1/shops/{shop['id']}/supplies"
        for url in (a, b):  # every process has each credential cached now
            assert (await call("GET", url, supplies, headers=key))[0] == 200
            assert (await call("GET", url, supplies, headers=sessions["staff"]))[0] == 200
            assert (await call("GET", url, "/v1/auth/me", headers=sessions["owner"]))[0] == 200

        timings = {}
        assert (await call("DELETE", a, f"/v1/api-keys/{made['id']}", headers=sessions["owner"]))[0] == 204
        timings["api key"] = await refused_everywhere(http, [a, b], supplies, key)
        assert (await call("DELETE", b, f"/v1/shops/{shop['id']}/members/{ids['staff']}",
                           headers=sessions["owner"]))[0] == 204
        timings["grant"] = await refused_everywhere(http, [a, b], supplies, sessions["staff"])
        other = {k: v for k, v in sessions["owner"].items()}
        async with http.post(f"{a}/v1/auth/login", json={"email": emails["owner"], "password": PASSWORD}) as r:
            laptop = {"Cookie": f"bp_session={r.cookies['bp_session'].value}"}
        for url in (a, b):
            assert (await call("GET", url, "/v1/auth/me", headers=laptop))[0] == 200
        status, listed = await call("GET", b, "/v1/auth/sessions", headers=other)
        laptop_id = next(s["id"] for s in listed if not s["current"])  # type: ignore[union-attr,index]
        assert (await call("DELETE", b, f"/v1/auth/sessions/{laptop_id}", headers=other))[0] == 204
        timings["session"] = await refused_everywhere(http, [a, b], "/v1/auth/me", laptop)
        assert (await call("POST", a, f"/v1/users/{ids['owner']}/disable", headers=tokens.operator))[0] == 200
        timings["user"] = await refused_everywhere(http, [a, b], "/v1/auth/me", other)
    print("revocation took effect everywhere after (s):", {k: round(v, 3) for k, v in timings.items()})
    secrets_watch.watch(made["key"], PASSWORD, *(h["Cookie"].split("=", 1)[1] for h in sessions.values()))
    assert all(t < WITHIN for t in timings.values()), timings
