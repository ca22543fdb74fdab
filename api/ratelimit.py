"""Rate limits shared by every API process: fixed one-minute windows counted in Redis by one atomic
script, spent locally in leases so that a busy bucket costs a Redis round trip every few dozen
requests, not every request.

A lease is a twentieth of the budget, at most 2,000 requests (1 for small budgets such as logins, which are
exact), so with N API processes a window admits at most N leases (N x 5% of the limit) more than its
limit. Many clients that each send a few requests cost a Redis round trip per client per window. When Redis does not
answer, limits fail open: the request goes through, a metric counts it and the log says so (once per
outage), and Redis is left alone for a moment so no request waits on a dead server.

Sign-in attempts are counted differently (`reserve`, `turn`): exactly, in Redis, before the password is
checked, so that attempts sent at once count as much as attempts that failed one after the other. These
answer None when Redis does not: the sign-in throttle then counts in the process (api.accounts.local_counts),
never not at all.

A client is its network (`client_network`): an IPv4 address, or an IPv6 /64, which one home or one server
holds whole and whose every address it may use; per-address budgets are kept per network.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from aiohttp import web
from prometheus_client import Counter
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from beanpay import redis_client

log = structlog.get_logger("ratelimit")

REFUSED = Counter("beanpay_rate_limited_total", "Requests refused by a rate limit", ["bucket"])
FAIL_OPEN = Counter("beanpay_rate_limit_fail_open_total", "Requests let through because Redis did not answer")

WINDOW_MS = 60_000
# KEYS[1] bucket; ARGV: cost, window ms. Adds `cost` (0 reads) and returns the count and the window's rest.
_SCRIPT = """
local count = redis.call('INCRBY', KEYS[1], ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2])
end
return {count, ttl}
"""


# KEYS[1] bucket; ARGV: limit, window ms. Counts one attempt only if fewer than `limit` are counted: an attempt
# is reserved before the work it guards (a password check), so attempts in flight count as much as failures.
_RESERVE = """
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then ttl = tonumber(ARGV[2]) end
if count >= tonumber(ARGV[1]) then
  return {0, count, ttl}
end
count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return {1, count, ttl}
"""
# KEYS[1] bucket: gives back one reserved attempt (it succeeded), never below zero, keeping the window.
_REFUND = """
if redis.call('EXISTS', KEYS[1]) == 1 and tonumber(redis.call('GET', KEYS[1])) > 0 then
  redis.call('DECR', KEYS[1])
end
return 0
"""
# The turn of one sign-in attempt at an account. KEYS[1] the account's attempts this hour from every network
# (failed or in flight), KEYS[2] the network's mark at the account (an attempt of it there this hour did not
# succeed), KEYS[3] the account's pace from this network, KEYS[4] the account's pace from every network that
# has failed there. ARGV: cap, hour ms, free, first gap ms, longest gap ms, longest wait ms, quiet ms, slow start
# ms. A pace hash is {n: attempts, last: when the latest may start, ms}: past `free` attempts each starts no
# sooner than the previous one's start plus a gap doubling per attempt (up to the longest gap); an attempt
# whose start is further off than the longest wait is refused until then. Below the cap an attempt keeps to its
# network's pace, so only that network's failures slow it; past the cap every attempt is slowed: a network
# that has not failed at the account waits the slow start and is let in (it cannot be locked out by others),
# the networks that have failed take turns in the account's one queue. Returns {admitted, ms to wait, lane}
# (numbered as the KEYS it went by: 3 the network's pace, 4 the account's queue, 2 neither); the clock is Redis's,
# one for every process.
# api.accounts.local_counts keeps the same rules in a process while Redis does not answer.
_TURN = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function pace(key, free)
  local n = tonumber(redis.call('HGET', key, 'n') or '0')
  local start = now
  if n >= free then
    local last = tonumber(redis.call('HGET', key, 'last') or '0')
    start = math.max(now, last + math.min(tonumber(ARGV[4]) * 2 ^ (n - free), tonumber(ARGV[5])))
  end
  if start - now > tonumber(ARGV[6]) then
    return false, start - now
  end
  redis.call('HSET', key, 'n', n + 1, 'last', start)
  redis.call('PEXPIRE', key, ARGV[7])
  return true, start - now
end
local lane, admitted, wait = 3, true, 0
if tonumber(redis.call('GET', KEYS[1]) or '0') < tonumber(ARGV[1]) then
  admitted, wait = pace(KEYS[3], tonumber(ARGV[3]))
elseif redis.call('EXISTS', KEYS[2]) == 1 then
  lane = 4
  admitted, wait = pace(KEYS[4], 0)
else
  lane, wait = 2, tonumber(ARGV[8])
end
if not admitted then
  return {0, wait, lane}
end
if redis.call('INCR', KEYS[1]) == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
return {1, wait, lane}
"""
# An attempt that succeeded: KEYS[1] the account's attempts this hour, one fewer; KEYS[2] the network's mark,
# gone (it proved to be the account's); KEYS[3], if given, the pace it took its turn in, one attempt fewer.
_DONE = """
if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then redis.call('DECR', KEYS[1]) end
redis.call('DEL', KEYS[2])
if KEYS[3] and tonumber(redis.call('HGET', KEYS[3], 'n') or '0') > 0 then
  redis.call('HINCRBY', KEYS[3], 'n', -1)
end
return 0
"""


@dataclass(frozen=True, slots=True)
class Pacing:
    """How attempts at one account are spaced (see _TURN); times in seconds."""

    cap: int  # attempts an hour at the account from every network, past which every attempt is slowed
    free: int  # attempts of one network before its own pace starts
    first_gap: float
    longest_gap: float
    longest_wait: float  # an attempt whose turn is further off is refused until then, not held open
    quiet: float  # a pace is forgotten this long after its last attempt
    slow_start: float  # past the cap, how long a network that has not failed at the account waits
    hour: float = 3600.0


@dataclass(frozen=True, slots=True)
class Turn:
    """An attempt's turn: admitted after `wait_seconds`, or refused (come back then). `lane` says which pace
    it took (3: its network's, 4: the account's queue, 2: none), so success gives that attempt back."""

    admitted: bool
    wait_seconds: float
    lane: int


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def sign_in_keys(account: str, network: str) -> tuple[str, str, str, str]:
    """The buckets of _TURN for attempts at `account` from `network`."""
    # (not the names the previous release kept hashes under: a string read as a hash is a Redis error)
    return (f"login-hour:{account}", f"login-failed:{account}|{network}", f"login-pace:{account}|{network}",
            f"login-queue:{account}")


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int  # until the window ends


class _Lease:
    """Requests this process may still admit from `bucket` until `until`; `refused`: the window is spent."""

    __slots__ = ("left", "refused", "until")

    def __init__(self, left: int, until: float, refused: bool) -> None:
        self.left, self.until, self.refused = left, until, refused


class Limiter:
    def __init__(self, url: str, *, timeout: float, retry_after: float, namespace: str = "",
                 max_buckets: int = 100_000) -> None:
        # one deployment's buckets: deployments (and test runs) sharing a Redis never share budgets
        self._prefix = f"beanpay:rl:{namespace}:"
        self._redis = redis_client.connect(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                                              retry_on_timeout=False)
        self._script = self._redis.register_script(_SCRIPT)
        self._reserve = self._redis.register_script(_RESERVE)
        self._refund = self._redis.register_script(_REFUND)
        self._turn = self._redis.register_script(_TURN)
        self._done = self._redis.register_script(_DONE)
        self._leases: dict[str, _Lease] = {}
        self._refills: dict[str, asyncio.Future[None]] = {}
        self._max = max_buckets
        self._retry_after = retry_after
        self._down_until = 0.0

    def spend(self, bucket: str) -> bool:
        """Spend one request from this process's lease of `bucket`, if it has one left (no I/O)."""
        lease = self._leases.get(bucket)
        if lease is not None and lease.left > 0 and time.monotonic() < lease.until:
            lease.left -= 1
            return True
        return False

    async def take(self, bucket: str, limit: int) -> Decision | None:
        """Spend one request of `bucket`'s budget of `limit` a minute: None when it may go on (the common
        case, kept to a dict lookup: at 20,000 requests a second a request has 50 us in all), else the
        refusal. One refill per bucket is in flight at a time; requests that find the lease empty wait
        for it (without that, every request arriving during a refill went to Redis: one in 4.5, not 50)."""
        while True:
            now = time.monotonic()
            lease = self._leases.get(bucket)
            if lease is not None and now < lease.until:
                if lease.left > 0:
                    lease.left -= 1
                    return None
                if lease.refused:  # the window's budget is spent: refused here, until the window ends
                    return Decision(False, limit, 0, max(1, -(-int((lease.until - now) * 1000) // 1000)))
            pending = self._refills.get(bucket)
            if pending is None:
                break
            await asyncio.shield(pending)
        refill = asyncio.get_running_loop().create_future()
        self._refills[bucket] = refill
        try:
            return await self._refill(bucket, limit, now)
        finally:
            del self._refills[bucket]
            refill.set_result(None)

    async def _refill(self, bucket: str, limit: int, now: float) -> Decision | None:
        chunk = max(1, min(limit // 20, 2000))
        counted = await self._run(bucket, chunk)
        if counted is None:
            return None
        count, ttl_ms = counted
        granted = max(0, min(chunk, limit - (count - chunk)))
        if len(self._leases) >= self._max:
            self._leases.clear()  # bounded; a cleared lease only costs an early trip to Redis
        self._leases[bucket] = _Lease(max(0, granted - 1), now + ttl_ms / 1000, granted == 0)
        if granted == 0:
            REFUSED.labels(bucket.split(":", 1)[0]).inc()
            return Decision(False, limit, 0, max(1, -(-ttl_ms // 1000)))
        return None

    async def reserve(self, bucket: str, limit: int, *, window: float = WINDOW_MS / 1000) -> Decision | None:
        """Count one attempt against `bucket`'s `limit` per `window` seconds before it is made (exact, no lease):
        refused when `limit` attempts (failed or still running) are counted; `refund` it when it succeeded.
        None when Redis does not answer."""
        found = await self._call(self._reserve, [bucket], [limit, int(window * 1000)])
        if found is None:
            return None
        admitted, count, ttl_ms = (int(v) for v in found)
        if not admitted:
            REFUSED.labels(bucket.split(":", 1)[0]).inc()
        return Decision(bool(admitted), limit, max(0, limit - count), max(1, -(-ttl_ms // 1000)))

    async def refund(self, bucket: str) -> None:
        await self._call(self._refund, [bucket], [])

    async def turn(self, account: str, network: str, pacing: Pacing) -> Turn | None:
        """The turn of one sign-in attempt at `account` from `network` (see _TURN); None when Redis does not
        answer."""
        p = pacing
        found = await self._call(self._turn, list(sign_in_keys(account, network)),
                                 [p.cap, _ms(p.hour), p.free, _ms(p.first_gap), _ms(p.longest_gap),
                                  _ms(p.longest_wait), _ms(p.quiet), _ms(p.slow_start)])
        if found is None:
            return None
        admitted, wait_ms, lane = (int(v) for v in found)
        if not admitted:
            REFUSED.labels("login-pace").inc()
        return Turn(bool(admitted), wait_ms / 1000, lane)

    async def done(self, account: str, network: str, turn: Turn) -> None:
        """Gives back the attempt of `turn`: it succeeded."""
        count, mark, own, queue = sign_in_keys(account, network)
        paced = {3: [own], 4: [queue]}.get(turn.lane, [])
        await self._call(self._done, [count, mark, *paced], [])

    async def _call(self, script: AsyncScript, keys: list[str], args: list[int]) -> Any:
        """The script's answer; None when Redis does not answer."""
        if time.monotonic() < self._down_until:
            return None
        try:
            return await script(keys=[self._prefix + k for k in keys], args=args)
        except (RedisError, OSError) as exc:
            self._down(exc)
            return None

    async def _run(self, bucket: str, cost: int) -> tuple[int, int] | None:
        if time.monotonic() < self._down_until:
            FAIL_OPEN.inc()
            return None
        try:
            count, ttl = await self._script(keys=[self._prefix + bucket], args=[cost, WINDOW_MS])
            return int(count), int(ttl)
        except (RedisError, OSError) as exc:
            FAIL_OPEN.inc()
            self._down(exc)
            return None

    def _down(self, exc: Exception) -> None:
        if time.monotonic() >= self._down_until:
            log.warning("rate limits fail open: Redis does not answer", error=str(exc))
        self._down_until = time.monotonic() + self._retry_after

    async def close(self) -> None:
        await self._redis.aclose()


def headers(decision: Decision, policy: str, *, window: int = WINDOW_MS // 1000) -> dict[str, str]:
    """The IETF RateLimit fields (draft-ietf-httpapi-ratelimit-headers), plus Retry-After, of a refusal
    (admitted requests carry none: they would cost more than the limiter itself)."""
    found = {"RateLimit-Policy": f'"{policy}";q={decision.limit};w={window}',
             "RateLimit": f'"{policy}";r={decision.remaining};t={decision.reset_seconds}'}
    if not decision.allowed:
        found["Retry-After"] = str(decision.reset_seconds)
    return found


Networks = Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]


def parse_networks(cidrs: Sequence[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(c, strict=False) for c in cidrs]


def client_network(request: web.Request, trusted: Networks) -> str:
    """The client as budgets count it: its IPv4 address, or its IPv6 /64 (see network_of)."""
    return network_of(client_ip(request, trusted))


@functools.lru_cache(maxsize=4096)
def network_of(address: str) -> str:
    """An IPv4 address as it is; an IPv6 address as its /64 (a home or a server is given a whole /64 and may
    send from any address in it, so a budget per /128 is no budget); anything else as it is."""
    if ":" not in address:
        return address
    try:
        ip = ipaddress.IPv6Address(address)
    except ValueError:
        return address
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return f"{ipaddress.IPv6Address(int(ip) >> 64 << 64)}/64"


def client_ip(request: web.Request, trusted: Networks) -> str:
    """The client's address: the peer's, unless the peer is a trusted proxy; then the nearest address
    in X-Forwarded-For that is not one (addresses further left were written by the client, and may lie)."""
    peer = request.remote or "unknown"
    if not trusted or not _within(peer, trusted):
        return peer
    hops = [h.strip() for h in ",".join(request.headers.getall("X-Forwarded-For", [])).split(",") if h.strip()]
    for hop in reversed(hops):
        if not _within(hop, trusted):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # garbage from a proxy we trust: fall back to the proxy itself
    return peer


def _within(address: str, networks: Networks) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in n for n in networks)
