"""Guessing and replaying one's way in: parallel password guesses against the login throttle, locking the
owner out by spending the account's budget (from one address, from several, from an IPv6 /64 rotating its
addresses), guessing TOTP codes with a known password, guessing while Redis does not answer, replaying a TOTP
code, and an operator moving money or access with a password alone."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from beanpay.api.accounts import throttle
from beanpay.api.app import all_routes
from beanpay.config import Settings
from beanpay.tokens import Claims, issue
from tests import secrets_watch
from tests.bench.local import free_port
from tests.conftest import Tokens
from tests.harness.accounts import (
    PASSWORD,
    WRONG,
    Person,
    address,
    ipv4,
    make_app,
    neighbour,
    new_account,
    shop_with,
    with_totp,
    wrong_code,
)


async def test_parallel_guesses_all_count_before_the_password_is_checked(settings: Settings, aiohttp_client: Any,
                                                                         tokens: Tokens) -> None:
    """Attack: 20 wrong passwords for one account sent at once from one address (limit 5 a minute): each
    checked the budget before any had failed, so all 20 reached argon2. Must hold: at most 5 attempts are
    judged (401), every other one is refused before its password is looked at (429)."""
    api = await make_app(settings, aiohttp_client, rate_limit_logins=5)
    email, _ = await new_account(api, tokens)
    attacker = Person(api)
    answers = await asyncio.gather(*(attacker.login(email, WRONG) for _ in range(20)))
    statuses = sorted(a.status for a in answers)
    assert statuses.count(401) <= 5 and statuses.count(429) >= 15, statuses
    assert statuses.count(401) + statuses.count(429) == 20


async def test_an_attacker_cannot_lock_the_owner_out(settings: Settings, aiohttp_client: Any, tokens: Tokens,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Attack: five wrong passwords a minute for the owner's account, from the attacker's address, locked the
    account for everyone. Must hold: the attacker's address is refused (429), the owner signs in from their
    own address with the right password. Past the account's cap of failures from every network (lowered to
    8 here) every attempt at it is slowed: a network that has not failed there waits a moment and is let in,
    never refused (the owner among them); networks that have failed there take turns, with growing gaps."""
    monkeypatch.setattr(throttle, "ACCOUNT_FAILURES_PER_HOUR", 8)
    api = await make_app(settings, aiohttp_client, rate_limit_logins=5)
    email, _ = await new_account(api, tokens)
    attacker = Person(api)
    for _ in range(5):
        assert (await attacker.login(email, WRONG)).status == 401
    assert (await attacker.login(email, WRONG)).status == 429

    owner = Person(api)
    signed_in = await owner.login(email)
    assert signed_in.status == 200, await signed_in.text()

    second = Person(api, ipv4())  # a second network takes the account past its cap
    for _ in range(4):
        assert (await second.login(email, WRONG)).status == 401

    fresh = [Person(api) for _ in range(3)]
    started = time.monotonic()
    spread = await asyncio.gather(*(p.login(email, WRONG) for p in fresh))
    took = time.monotonic() - started
    assert [a.status for a in spread] == [401, 401, 401]
    assert took >= throttle.SLOW_START * 0.9, f"guesses at an account past its cap were judged within {took:.2f} s"
    again = await Person(api, owner.ip).login(email)
    assert again.status == 200, await again.text()

    started = time.monotonic()  # those networks have failed here now: they take turns
    spread = await asyncio.gather(*(p.login(email, WRONG) for p in fresh))
    took = time.monotonic() - started
    assert [a.status for a in spread] == [401, 401, 401]
    assert took >= 1.0, f"three guesses from networks that failed were judged within {took:.2f} s"


async def test_a_totp_code_is_accepted_once(settings: Settings, aiohttp_client: Any, tokens: Tokens,
                                           db: Any) -> None:
    """Attack: a TOTP code seen once (over a shoulder, from a phished page) is sent again within its 30 s
    window, also twice at the same moment. Must hold: each code (each time step) signs in once, and never
    a step at or below the last one accepted."""
    api = await make_app(settings, aiohttp_client, rate_limits=False)
    email, user_id = await new_account(api, tokens)
    totp = await with_totp(db, user_id)
    code = totp.now()
    assert (await Person(api).login(email, totp=code)).status == 200
    replayed = await Person(api).login(email, totp=code)
    assert replayed.status == 401 and (await replayed.json())["error"]["code"] == "second_factor_required"
    # the next step's code (within the window) works once, even sent twice at once
    following = totp.at(int(time.time()) + 30)
    if following != code:
        both = await asyncio.gather(Person(api).login(email, totp=following), Person(api).login(email, totp=following))
        assert sorted(r.status for r in both) == [200, 401]
    # and the earlier step, still within the window, is refused once a later one was accepted
    assert (await Person(api).login(email, totp=totp.at(int(time.time()) - 30))).status == 401


async def test_operators_need_a_second_factor_for_payouts_and_accounts(settings: Settings, aiohttp_client: Any,
                                                                       tokens: Tokens, db: Any) -> None:
    """Attack: an operator's password alone (phished, reused) approves payouts and makes or disables accounts.
    Must hold: those need a session signed in with the second factor; an operator without TOTP is told to
    turn it on (403); a development token counts as signed in with one only if it says so."""
    api = await make_app(settings, aiohttp_client, rate_limits=False)
    email, user_id = await new_account(api, tokens, operator=True)
    operator = Person(api)
    assert (await operator.login(email)).status == 200
    payout = f"/v1/payouts/{uuid.uuid4()}/approve"
    new_user = {"email": f"{uuid.uuid4().hex[:8]}@example.com", "password": "another long password"}

    refused = await operator.call("POST", "/v1/users", json=new_user)
    assert refused.status == 403, await refused.text()
    assert "TOTP" in (await refused.json())["error"]["message"]
    assert (await operator.call("POST", payout)).status == 403
    assert (await operator.call("POST", f"/v1/users/{user_id}/disable")).status == 403

    totp = await with_totp(db, user_id)
    stale = await operator.call("POST", "/v1/users", json=new_user)  # a session from before the second factor
    assert stale.status == 403 and "sign in" in (await stale.json())["error"]["message"]
    strong = Person(api)
    assert (await strong.login(email, totp=totp.now())).status == 200
    assert (await strong.call("POST", payout)).status == 404  # let in: there is no such payout
    made = await strong.call("POST", "/v1/users", json=new_user)
    assert made.status == 201, await made.text()

    weak = issue(Claims(sub=uuid.uuid4(), role="operator", second_factor=False), tokens.secret, ttl=60)
    secrets_watch.watch(weak)
    assert (await api.post(payout, headers={"Authorization": f"Bearer {weak}"})).status == 403
    assert (await api.post(payout, headers=tokens.operator)).status == 404


async def test_attackers_on_three_networks_cannot_keep_the_owner_out(settings: Settings, aiohttp_client: Any,
                                                                    tokens: Tokens) -> None:
    """Attack: wrong passwords for the owner's account, sent again the moment they are refused, from two IPv4
    addresses and from an IPv6 /64 whose every request comes from a new address in it (budgets were kept per
    /128, and an attempt refused by the account's pace gave its address budget back, so asking cost nothing):
    each turn of the account's pace was taken within milliseconds of opening, and the owner got 429. Must
    hold: the owner, from an address of their own with the right password, signs in within a few seconds
    while the attack goes on."""
    api = await make_app(settings, aiohttp_client, rate_limit_logins=5)
    email, _ = await new_account(api, tokens)
    first, second, network = ipv4(), ipv4(), address()
    sources: list[Callable[[], str]] = [lambda: first, lambda: second, lambda: neighbour(network)]
    stop = asyncio.Event()
    seen: Counter[int] = Counter()

    async def hammer(source: Callable[[], str]) -> None:
        while not stop.is_set():
            resp = await api.post("/v1/auth/login", json={"email": email, "password": WRONG},
                                  headers={"X-Forwarded-For": source()})
            seen[resp.status] += 1
            resp.release()
            await asyncio.sleep(0.03)

    attackers = [asyncio.create_task(hammer(s)) for s in sources for _ in range(2)]
    try:
        await asyncio.sleep(2.0)  # the attack is under way: whatever of the account it can take is taken
        owner = Person(api, ipv4())
        started = time.monotonic()
        while True:
            resp = await owner.login(email)
            if resp.status != 429 or time.monotonic() - started > 5:
                break
            await asyncio.sleep(0.5)
        took = time.monotonic() - started
        assert resp.status == 200 and took < 5, (resp.status, f"{took:.1f} s", dict(seen))
    finally:
        stop.set()
        await asyncio.gather(*attackers, return_exceptions=True)
    assert seen[429] > seen[401], dict(seen)  # the attackers were refused, not judged


async def test_totp_guesses_with_the_password_stop_after_a_few(settings: Settings, aiohttp_client: Any,
                                                              tokens: Tokens, db: Any) -> None:
    """Attack: the password is known (phished, reused) and the 6-digit code is guessed, each guess from a
    new network (no address budget runs out), through login and through turning TOTP off with a session from
    before the second factor (each route had a budget of its own): about 10,800 guesses a day. Must hold:
    after 5 wrong codes in all, the account takes no TOTP code for a while, from anywhere, through any route
    (429 with Retry-After, not judged: even the right code)."""
    api = await make_app(settings, aiohttp_client, rate_limit_logins=5)
    email, user_id = await new_account(api, tokens)
    holder = Person(api)
    assert (await holder.login(email)).status == 200  # before the second factor
    totp = await with_totp(db, user_id)

    for _ in range(3):
        guess = await Person(api).login(email, totp=wrong_code(totp))
        assert guess.status == 401 and (await guess.json())["error"]["code"] == "second_factor_required"
    for _ in range(2):
        off = await holder.call("POST", "/v1/auth/totp/disable", json={"code": wrong_code(totp), "password": PASSWORD})
        assert off.status == 422, await off.text()

    refused = await Person(api).login(email, totp=totp.now())
    assert refused.status == 429, await refused.text()
    assert int(refused.headers["Retry-After"]) >= 60
    off = await holder.call("POST", "/v1/auth/totp/disable", json={"code": totp.now(), "password": PASSWORD})
    assert off.status == 429, await off.text()
    assert await db.fetchval("SELECT totp_secret IS NOT NULL FROM users WHERE id = $1", uuid.UUID(user_id))


async def test_sign_in_is_still_throttled_while_redis_does_not_answer(settings: Settings, aiohttp_client: Any,
                                                                      tokens: Tokens) -> None:
    """Attack: while Redis does not answer (down, cut off, or flooded by the attacker) the sign-in throttle
    let every attempt through: 20 guesses at once from one address all reached argon2. Must hold: sign-in
    falls back to the same limits counted in the process: at most 5 judged, the rest 429; the owner, from
    an address of their own, still signs in."""
    email, _ = await new_account(await make_app(settings, aiohttp_client), tokens)
    api = await make_app(settings, aiohttp_client, redis_url=f"redis://127.0.0.1:{free_port()}/0",
                         rate_limit_logins=5)
    attacker = Person(api)
    answers = await asyncio.gather(*(attacker.login(email, WRONG) for _ in range(20)))
    statuses = sorted(a.status for a in answers)
    assert statuses.count(401) <= 5 and statuses.count(429) >= 15, statuses
    owner = await Person(api).login(email)
    assert owner.status == 200, await owner.text()


async def test_an_operator_password_alone_moves_no_money_and_no_access(settings: Settings, aiohttp_client: Any,
                                                                       tokens: Tokens, db: Any) -> None:
    """Attack: an operator's phished password opens a session without the second factor; with it the attacker
    cancels, retries or records the transaction of payouts, makes a payout batch, approves or cancels refunds,
    and makes anyone (themselves) owner of a shop, or removes its people. Must hold: every write of an
    operator without the second factor is refused (403, telling them to turn TOTP on and sign in with it),
    except signing out, setting TOTP up and changing the password; reads go on; with the second factor (a
    development token in test) the same writes get past the guard."""
    api = await make_app(settings, aiohttp_client, rate_limits=False)
    email, _ = await new_account(api, tokens, operator=True)
    shop_id, (_, staff) = await shop_with(api, tokens, db, "owner", "staff")
    weak = Person(api)
    assert (await weak.login(email)).status == 200
    nothing = uuid.uuid4()
    member = f"/v1/shops/{shop_id}/members/{staff.user_id}"
    writes: list[tuple[str, str, Any]] = [
        ("POST", f"/v1/payouts/{nothing}/cancel", {"reason": "not wanted"}),
        ("POST", f"/v1/payouts/{nothing}/retry", None),
        ("POST", f"/v1/payouts/{nothing}/transaction", {"txid": "00" * 32}),
        ("POST", "/v1/payout-batches", {"payout_ids": [str(nothing)]}),
        ("POST", f"/v1/payout-batches/{nothing}/signed-psbt", {"psbt": "cHNidP8="}),
        ("POST", f"/v1/refunds/{nothing}/approve", None),
        ("POST", f"/v1/refunds/{nothing}/cancel", {"reason": "not wanted"}),
        ("PUT", member, {"role": "owner"}),
        ("DELETE", member, None),
    ]
    for method, path, body in writes:
        refused = await weak.call(method, path, json=body)
        assert refused.status == 403, (method, path, refused.status, await refused.text())
        assert "TOTP" in (await refused.json())["error"]["message"], (method, path)
    assert (await db.fetchval("SELECT role FROM shop_grants WHERE shop_id = $1 AND user_id = $2",
                              uuid.UUID(shop_id), uuid.UUID(staff.user_id))) == "staff"

    # and so every write route of the table that a principal's rights open, but the four of signing in
    writes_of_the_table = [r for r in all_routes() if r.method not in ("GET", "HEAD") and not r.policy.public]
    assert {(r.method, r.path) for r in writes_of_the_table if r.policy.before_second_factor} == {
        ("POST", "/v1/auth/logout"), ("POST", "/v1/auth/password"), ("POST", "/v1/auth/totp/setup"),
        ("POST", "/v1/auth/totp/enable")}
    for route in writes_of_the_table:
        if not route.policy.before_second_factor:
            answer = await weak.call(route.method, re.sub(r"\{[a-z_]+\}", str(nothing), route.path), json={})
            assert answer.status == 403, (route.method, route.path, answer.status, await answer.text())
    assert (await weak.call("GET", "/v1/payouts")).status == 200  # reads go on
    assert (await weak.call("POST", "/v1/auth/totp/setup")).status == 200
    changed = await weak.call("POST", "/v1/auth/password", json={"current_password": WRONG,
                                                                  "new_password": "a new long password here"})
    assert changed.status == 422, await changed.text()  # judged: the wrong current password

    for method, path, body in writes:  # a development token carries the second factor in test
        passed = await api.request(method, path, json=body, headers=tokens.operator)
        assert passed.status != 403, (method, path, await passed.text())
    assert (await weak.call("POST", "/v1/auth/logout")).status == 204
