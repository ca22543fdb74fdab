"""The sign-in throttle: what every check of a password or TOTP code passes through (logins, accepting an
invitation into an existing account, changing a password, turning the second factor on or off).

An attempt is counted before its secret is checked, and given back when it succeeds, so attempts sent at
once count as much as attempts that failed one after another (argon2 runs only for admitted attempts). A
client is its network: an IPv4 address, or an IPv6 /64. An account is one key (its email) whichever route
checks its secrets.

- per network: `rate_limit_logins` attempts a minute (failed or in flight), whatever the account; past that,
  429. An attempt refused further on still spends it: asking again and again costs the asker.
- per account and network: past `rate_limit_logins` attempts, each attempt of that network at that account
  waits for its turn, the gap doubling from 0.25 s to 8 s; 429 with Retry-After when the turn is more than
  10 s away. Only a network's own failures slow it.
- per account, from every network: past ACCOUNT_FAILURES_PER_HOUR attempts within the hour, every attempt
  is slowed. A network that has not failed at the account within the hour waits SLOW_START and is let in (so
  nobody can lock the owner out from where the owner has not failed); the networks that have failed there take
  turns in one queue (at most one attempt per 8 s among them all).
- TOTP: a code is checked only after the right password, and at most TOTP_TRIES codes per TOTP_WINDOW are
  judged wrong (or are being checked) per account; past that the account takes no code until the window
  ends (429, the code not looked at). Guessing codes runs at 5 per 15 minutes, with the password.

When Redis does not answer, the same limits are counted in this process (api.accounts.local_counts): per
process while it lasts, never none. With BEANPAY_RATE_LIMITS=false (load tests) nothing is counted.
"""

from __future__ import annotations

import asyncio
import uuid

from aiohttp import web

from beanpay.api.accounts.local_counts import LocalCounts
from beanpay.api.ratelimit import Decision, Pacing, Turn, client_network, headers
from beanpay.api.state import LIMITER, TRUSTED_PROXIES, settings
from beanpay.errors import RateLimited

FIRST_GAP = 0.25  # seconds between attempts of a network once its free attempts are spent; doubles each time
LONGEST_GAP = 8.0
LONGEST_WAIT = 10.0  # an attempt whose turn is further off is refused until then, not held open
QUIET = 60.0  # a pace is forgotten this long after its last attempt
ACCOUNT_FAILURES_PER_HOUR = 100  # attempts at one account from every network, past which all are slowed
SLOW_START = 1.0  # past that, how long a network that has not failed at the account waits
TOTP_TRIES = 5  # wrong TOTP codes per account per window
TOTP_WINDOW = 900.0

LOCAL = LocalCounts()  # what this process counts while Redis does not answer


def account_of(email: str | None, user_id: uuid.UUID) -> str:
    """The one key of an account for every route that checks its secrets: its email (what login knows)."""
    return email if email else f"user:{user_id}"


class Attempt:
    """One admitted check of a secret; `succeeded` gives its reservations back."""

    def __init__(self, request: web.Request, reserved: list[tuple[str, bool]] | None = None,
                 turn: tuple[str, str, Turn, bool] | None = None) -> None:
        self._request = request
        self._reserved = reserved or []  # (bucket, counted here rather than in Redis)
        self._turn = turn  # (account, network, its turn, counted here)

    async def succeeded(self) -> None:
        limiter = self._request.app[LIMITER]
        for bucket, here in self._reserved:
            if here:
                LOCAL.refund(bucket)
            else:
                await limiter.refund(bucket)
        if self._turn is not None:
            account, network, turn, here = self._turn
            if here:
                LOCAL.done(account, network, turn)
            else:
                await limiter.done(account, network, turn)
        self._reserved, self._turn = [], None


async def _reserve(request: web.Request, bucket: str, limit: int, window: float) -> tuple[Decision, bool]:
    """The decision on one attempt of `bucket`, and whether it was counted here (Redis did not answer)."""
    decision = await request.app[LIMITER].reserve(bucket, limit, window=window)
    if decision is None:
        return LOCAL.reserve(bucket, limit, window), True
    return decision, False


async def attempt(request: web.Request, account: str) -> Attempt:
    """Admit one check of the secrets of `account` (an email, which need not be an account's; see
    `account_of`): a 429 if the client's network has no attempts left or the account's turn is too far off,
    else once the turn has come."""
    conf = settings(request)
    if not conf.rate_limits:
        return Attempt(request)
    limit = conf.rate_limit_logins
    network = client_network(request, request.app[TRUSTED_PROXIES])
    bucket = f"login-ip:{network}"
    decision, here = await _reserve(request, bucket, limit, 60.0)
    if not decision.allowed:
        raise RateLimited(f"too many sign-in attempts from this address; try again in {decision.reset_seconds} s",
                          headers(decision, "logins"))
    pacing = Pacing(cap=ACCOUNT_FAILURES_PER_HOUR, free=limit, first_gap=FIRST_GAP, longest_gap=LONGEST_GAP,
                    longest_wait=LONGEST_WAIT, quiet=QUIET, slow_start=SLOW_START)
    turn = await request.app[LIMITER].turn(account, network, pacing)
    turn_here = turn is None
    if turn is None:
        turn = LOCAL.turn(account, network, pacing)
    if not turn.admitted:
        # the network's attempt stays spent: polling for a free turn costs the poller's budget
        retry = max(1, int(turn.wait_seconds - LONGEST_WAIT) + 1)
        raise RateLimited(f"this account is being signed in to too often; try again in {retry} s",
                          headers(Decision(False, limit, 0, retry), "logins"))
    if turn.wait_seconds > 0:
        await asyncio.sleep(turn.wait_seconds)
    return Attempt(request, [(bucket, here)], (account, network, turn, turn_here))


async def code_attempt(request: web.Request, account: str) -> Attempt:
    """Admit one check of the account's TOTP code, made once its password proved right: a 429 (the code not
    looked at) while TOTP_TRIES codes of this window were wrong or are being checked."""
    if not settings(request).rate_limits:
        return Attempt(request)
    bucket = f"login-totp:{account}"
    decision, here = await _reserve(request, bucket, TOTP_TRIES, TOTP_WINDOW)
    if not decision.allowed:
        raise RateLimited(f"too many wrong TOTP codes for this account; try again in {decision.reset_seconds} s",
                          headers(decision, "totp", window=int(TOTP_WINDOW)))
    return Attempt(request, [(bucket, here)])
