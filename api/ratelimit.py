"""Rate limits shared by every API process: fixed one-minute windows counted in Redis by one atomic
script, spent locally in leases so that a busy bucket costs a Redis round trip every few dozen
requests, not every request.

A lease is a twentieth of the budget, at most 2,000 requests (1 for small budgets such as logins, which are
exact), so with N API processes a window admits at most N leases (N x 5% of the limit) more than its
limit. Many clients that each send a few requests cost a Redis round trip per client per window. When Redis does not
answer, limits fail open: the request goes through, a metric counts it and the log says so (once per
outage), and Redis is left alone for a moment so no request waits on a dead server.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Sequence
from dataclasses import dataclass

import structlog
from aiohttp import web
from prometheus_client import Counter
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

    async def spent(self, bucket: str, limit: int) -> Decision:
        """Whether `bucket` has used up its budget, without spending (failed logins are counted
        with `add` only when they fail)."""
        counted = await self._run(bucket, 0)
        if counted is None:
            return Decision(True, limit, limit, 60)
        count, ttl_ms = counted
        return Decision(count < limit, limit, max(0, limit - count), max(1, -(-ttl_ms // 1000)))

    async def add(self, bucket: str) -> None:
        await self._run(bucket, 1)

    async def _run(self, bucket: str, cost: int) -> tuple[int, int] | None:
        if time.monotonic() < self._down_until:
            FAIL_OPEN.inc()
            return None
        try:
            count, ttl = await self._script(keys=[self._prefix + bucket], args=[cost, WINDOW_MS])
            return int(count), int(ttl)
        except (RedisError, OSError) as exc:
            FAIL_OPEN.inc()
            if time.monotonic() >= self._down_until:
                log.warning("rate limits fail open: Redis does not answer", error=str(exc))
            self._down_until = time.monotonic() + self._retry_after
            return None

    async def close(self) -> None:
        await self._redis.aclose()


def headers(decision: Decision, policy: str) -> dict[str, str]:
    """The IETF RateLimit fields (draft-ietf-httpapi-ratelimit-headers), plus Retry-After, of a refusal
    (admitted requests carry none: they would cost more than the limiter itself)."""
    found = {"RateLimit-Policy": f'"{policy}";q={decision.limit};w=60',
             "RateLimit": f'"{policy}";r={decision.remaining};t={decision.reset_seconds}'}
    if not decision.allowed:
        found["Retry-After"] = str(decision.reset_seconds)
    return found


Networks = Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]


def parse_networks(cidrs: Sequence[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(c, strict=False) for c in cidrs]


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
