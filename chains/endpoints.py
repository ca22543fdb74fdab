"""Several RPC endpoints for one chain: spread over, failed over, and never trusted past what they know.

Each endpoint keeps its own health: a cool-down after a failure (doubling while it keeps failing, or what its
`Retry-After` asked), out for a long while when it refused for good (a quota, credentials), and the head it
last reported. A request that needs a block names it (`covers`), and goes only to an endpoint whose head is
at or past it, so a lagging backend is never asked about blocks it has not seen, and its empty answer never
marks them scanned. An endpoint more than `max_lag` blocks behind the best head is out of rotation until it
catches up. The choice among the healthy ones rotates, so the work is spread.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog
from aiolimiter import AsyncLimiter
from prometheus_client import Counter, Gauge, Histogram

from beanpay.chains.jsonrpc import JsonRpcClient, RpcError, RpcRefused, RpcUnavailable, display_url

log = structlog.get_logger("rpc")
T = TypeVar("T")

REQUESTS = Counter("beanpay_rpc_requests_total", "Requests to a chain's RPC endpoints, by outcome",
                   ["chain", "endpoint", "outcome"])
LATENCY = Histogram("beanpay_rpc_request_seconds", "Time an RPC endpoint took to answer", ["chain", "endpoint"])
HEAD_LAG = Gauge("beanpay_rpc_endpoint_head_lag_blocks", "Blocks an endpoint's head is behind the best one",
                 ["chain", "endpoint"])
IN_ROTATION = Gauge("beanpay_rpc_endpoint_in_rotation", "1 while an endpoint is asked; 0 while it cools down, "
                    "lags or refused", ["chain", "endpoint"])

REFUSED_FOR = 600.0  # an endpoint that refused for good (quota, credentials) is tried again after this
COOL_FIRST, COOL_CAP = 1.0, 60.0

# An endpoint that has not got the block (yet): a lagging backend behind a load balancer says so this way.
NOT_YET = ("header not found", "unknown block", "block not found", "could not find block", "missing trie node")


METHOD_NOT_FOUND = -32601
# Errors a node sends in a JSON-RPC body (often with HTTP 200) that say "not now" rather than "no": rate
# limits, overload, timeouts. Another endpoint, or the next poll, may answer.
TRANSIENT = re.compile(r"(?i)rate limit|too many requests|exceeded .*(?:capacity|rate)|timeout|timed out|"
                       r"try again|temporarily|overloaded|busy|internal error")


class NotYet(LookupError):
    """The endpoint does not have the block asked for (yet)."""


def is_not_yet(exc: RpcError) -> bool:
    return any(s in exc.message.lower() for s in NOT_YET)


def is_transient(exc: RpcError) -> bool:
    return (exc.code in (429, -32005, -32603) and not is_not_yet(exc)) or TRANSIENT.search(exc.message) is not None


@dataclass
class EndpointState:
    """One endpoint's health, as the pool sees it. Pure: times are passed in."""

    name: str
    cooling_until: float = 0.0
    failures: int = 0
    refused: str | None = None
    head: int | None = None
    lag: int = 0
    logs_span: int | None = None  # the widest eth_getLogs range it took since it last refused one
    lacks: frozenset[str] = frozenset()  # methods it does not serve (a provider without debug traces)
    verified: bool = False  # it said it serves the expected chain

    def usable(self, now: float, covers: int | None, max_lag: int, method: str | None = None) -> bool:
        if now < self.cooling_until or self.lag > max_lag or method in self.lacks:
            return False
        return covers is None or (self.head is not None and self.head >= covers)

    def condition(self, now: float, max_lag: int) -> str:
        """ok, lagging, failing (cooling down) or refused, as `beanpay chain status` shows it."""
        if self.refused is not None and now < self.cooling_until:
            return "refused"
        if now < self.cooling_until:
            return "failing"
        return "lagging" if self.lag > max_lag else "ok"

    def failed(self, now: float, asked: float | None = None) -> float:
        self.failures += 1
        wait = asked if asked is not None else min(COOL_FIRST * 2 ** (self.failures - 1), COOL_CAP)
        self.cooling_until = now + wait
        return wait

    def refuse(self, now: float, reason: str) -> None:
        self.refused, self.cooling_until = reason, now + REFUSED_FOR

    def worked(self) -> None:
        self.failures, self.refused = 0, None


def note_heads(states: Sequence[EndpointState]) -> int | None:
    """Each endpoint's lag behind the best head any of them reported; the best head."""
    heads = [s.head for s in states if s.head is not None]
    if not heads:
        return None
    best = max(heads)
    for s in states:
        s.lag = best - s.head if s.head is not None else 0
    return best


@dataclass(frozen=True)
class Endpoint:
    url: str
    name: str | None = None
    requests_per_second: float | None = None


class RpcPool:
    """The endpoints of one chain. `run(fn, covers=...)` calls `fn(client, state)` on a healthy endpoint,
    and on the next one when it cannot answer; an RpcError (the node answered) goes back to the caller."""

    def __init__(self, chain: str, endpoints: Sequence[Endpoint], make: Callable[[Endpoint, str], JsonRpcClient],
                 head: tuple[str, Callable[[Any], int]], *, max_lag: int = 8,
                 identity: tuple[str, Any] | None = None) -> None:
        """`head`: the method that tells an endpoint's head and how to read it; `identity`: a method and the
        answer an endpoint of this chain gives (eth_chainId): one answering otherwise is refused."""
        if not endpoints:
            raise ValueError(f"{chain}: no RPC endpoint")
        self.chain, self.max_lag, (self._head_method, self._parse_head) = chain, max_lag, head
        self._identity = identity
        names = [e.name or display_url(e.url) for e in endpoints]
        names = [n if names.count(n) == 1 else f"{n}#{i}" for i, n in enumerate(names)]  # one provider, two keys
        self.clients = [make(e, n) for e, n in zip(endpoints, names, strict=True)]
        self.states = [EndpointState(c.name) for c in self.clients]
        self._limits = [AsyncLimiter(e.requests_per_second, 1) if e.requests_per_second else None for e in endpoints]
        self._turn = itertools.count()
        for s in self.states:
            IN_ROTATION.labels(chain, s.name).set(1)

    def _order(self, covers: int | None, method: str | None = None) -> list[int]:
        """Usable endpoints, rotating. When none is: those that serve the method and have the block, cooling
        down soonest first (a single endpoint is always tried again); none when no endpoint is known to."""
        now = time.monotonic()
        start = next(self._turn) % len(self.states)
        rotated = [(start + i) % len(self.states) for i in range(len(self.states))]
        usable = [i for i in rotated if self.states[i].usable(now, covers, self.max_lag, method)]
        if usable:
            return usable
        covering = [i for i in rotated if (covers is None or (self.states[i].head or -1) >= covers)
                    and method not in self.states[i].lacks]
        return sorted(covering, key=lambda i: (self.states[i].refused is not None, self.states[i].cooling_until))

    async def run(self, method: str, fn: Callable[[JsonRpcClient, EndpointState], Awaitable[T]],
                  covers: int | None = None) -> T:
        """`fn` on the first endpoint of `_order` that answers; `method` is the JSON-RPC method it calls."""
        order = self._order(covers, method)
        if not order and all(method in s.lacks for s in self.states):
            raise RpcUnavailable(f"{self.chain}: no endpoint serves {method}")
        if not order:  # no endpoint said it has the block: ask for their heads, once
            await self.head()
            order = self._order(covers, method)
            if not order:
                raise NotYet(f"{self.chain}: no endpoint has block {covers} yet")
        last: Exception | None = None
        for i in order:
            client, state, limit = self.clients[i], self.states[i], self._limits[i]
            if limit is not None:
                await limit.acquire()
            started = time.monotonic()
            try:
                result = await fn(client, state)
            except RpcRefused as exc:
                state.refuse(time.monotonic(), str(exc))
                self._count(state, "refused", started)
                log.error("an RPC endpoint refused for good; out of rotation", chain=self.chain, endpoint=state.name,
                          error=str(exc), retry_in=REFUSED_FOR)
                last = exc
            except (RpcUnavailable, NotYet) as exc:
                wait = state.failed(time.monotonic(), getattr(exc, "retry_after", None))
                self._count(state, "not_yet" if isinstance(exc, NotYet) else "unavailable", started)
                log.warning("an RPC endpoint failed; trying another", chain=self.chain, endpoint=state.name,
                            method=method, error=str(exc), cooling=round(wait, 1))
                last = exc
            except RpcError as exc:
                if exc.code == METHOD_NOT_FOUND and len(self.states) > 1:  # another endpoint may serve it
                    state.lacks = state.lacks | {exc.method}
                    self._count(state, "method_missing", started)
                    log.warning("an RPC endpoint does not serve a method; asking the others", chain=self.chain,
                                endpoint=state.name, method=exc.method)
                    last = exc
                    continue
                if is_transient(exc):
                    wait = state.failed(time.monotonic())
                    self._count(state, "unavailable", started)
                    log.warning("an RPC endpoint said not now; trying another", chain=self.chain,
                                endpoint=state.name, method=method, error=str(exc), cooling=round(wait, 1))
                    last = RpcUnavailable(str(exc))
                    continue
                if not is_not_yet(exc):
                    state.worked()
                    self._count(state, "rpc_error", started)
                    raise
                state.failed(time.monotonic())
                self._count(state, "not_yet", started)
                last = NotYet(str(exc))
            else:
                state.worked()
                self._count(state, "ok", started)
                return result
        if isinstance(last, NotYet):
            raise last
        raise RpcUnavailable(f"{self.chain}: no endpoint could answer {method}: {last}")

    def _count(self, state: EndpointState, outcome: str, started: float) -> None:
        REQUESTS.labels(self.chain, state.name, outcome).inc()
        LATENCY.labels(self.chain, state.name).observe(time.monotonic() - started)
        IN_ROTATION.labels(self.chain, state.name).set(
            int(state.usable(time.monotonic(), None, self.max_lag)))

    async def call(self, method: str, *params: Any, covers: int | None = None) -> Any:
        return await self.run(method, lambda c, _: c.call(method, *params), covers)

    async def batch(self, calls: list[tuple[str, tuple[Any, ...]]], *, covers: int | None = None) -> list[Any]:
        return await self.run(calls[0][0] if calls else "batch", lambda c, _: c.batch(calls), covers)

    async def head(self) -> int:
        """Ask every endpoint not cooling down for its head, at once; the best head. Endpoints behind it
        by more than `max_lag` leave the rotation until they catch up."""
        now = time.monotonic()
        asked = [i for i, s in enumerate(self.states) if now >= s.cooling_until] or list(range(len(self.states)))

        failures: list[Exception] = []

        async def one(i: int) -> None:
            state = self.states[i]
            try:
                if self._identity is not None and not state.verified:
                    method, expected = self._identity
                    if (got := await self.clients[i].call(method)) != expected:
                        state.refuse(time.monotonic(), f"{method} answered {got!r}, not {expected!r}: another chain")
                        log.error("an RPC endpoint serves another chain; out of rotation", chain=self.chain,
                                  endpoint=state.name, answered=repr(got), expected=repr(expected))
                        return
                    state.verified = True
                state.head = self._parse_head(await self.clients[i].call(self._head_method))
            except RpcRefused as exc:
                state.refuse(time.monotonic(), str(exc))
                REQUESTS.labels(self.chain, state.name, "refused").inc()
                log.error("an RPC endpoint refused for good; out of rotation", chain=self.chain, endpoint=state.name,
                          error=str(exc), retry_in=REFUSED_FOR)
                failures.append(exc)
            except (RpcUnavailable, RpcError) as exc:
                state.failed(time.monotonic(), getattr(exc, "retry_after", None))
                REQUESTS.labels(self.chain, state.name, "unavailable").inc()
                failures.append(exc)

        await asyncio.gather(*(one(i) for i in asked))
        best = note_heads(self.states)
        for s in self.states:
            HEAD_LAG.labels(self.chain, s.name).set(s.lag)
            IN_ROTATION.labels(self.chain, s.name).set(int(s.usable(time.monotonic(), None, self.max_lag)))
        if best is None or len(failures) == len(asked):
            raise RpcUnavailable(f"{self.chain}: no endpoint told its head: {failures[-1] if failures else ''}")
        return best

    def health(self) -> list[tuple[EndpointState, str]]:
        now = time.monotonic()
        return [(s, s.condition(now, self.max_lag)) for s in self.states]

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self.clients))
