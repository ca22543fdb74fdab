"""How many event streams one client may hold open in this process: each holds a connection, a task and
a watch for as long as the client likes, so they are capped per client address (its network: an IPv4
address, an IPv6 /64) and per holder (the checkout link's order, or the signed-in principal), over checkout
pages and shop boards together, and in all (per process: a 503, with Retry-After, beyond).

Counted in this process's memory, checked and taken in one synchronous step (no await between the check
and the count), so two opens in the same instant cannot both take the last slot; a slot is given back
when its stream ends. The caps are per process: they bound what one client costs each process, which is
where an exhausted stream budget would hurt.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator

from aiohttp import web
from prometheus_client import Counter as Metric

from beanpay.api.ratelimit import client_ip, network_of
from beanpay.api.state import TRUSTED_PROXIES
from beanpay.errors import RateLimited, Unavailable

REFUSED = Metric("beanpay_event_streams_refused_total",
                 "Event streams refused: the client (or the process) holds too many", ["by"])
RETRY_AFTER_SECONDS = 5


class ProcessFull(Unavailable, RateLimited):
    """The process holds as many streams as it may: a 503 (Unavailable comes first), with the Retry-After of a
    RateLimited, so JSON answers and pages both say when to come back."""


class StreamSlots:
    def __init__(self, per_address: int, per_holder: int, per_process: int) -> None:
        self.per_address, self.per_holder, self.per_process = per_address, per_holder, per_process
        self._open: Counter[str] = Counter()

    @contextlib.contextmanager
    def hold(self, address: str, holder: str) -> Iterator[None]:
        """A slot for one stream of `holder` from `address` while the block runs; a 429 if either is full, a
        503 if the process is (the client is better served by another process, or later)."""
        keys = ("process", f"address:{address}", f"holder:{holder}")
        if self._open[keys[0]] >= self.per_process:
            REFUSED.labels("process").inc()
            raise ProcessFull(f"this server holds as many event streams as it may ({self.per_process}); "
                              "try again shortly", {"Retry-After": str(RETRY_AFTER_SECONDS)})
        if self._open[keys[1]] >= self.per_address:
            REFUSED.labels("address").inc()
            raise RateLimited(f"too many open event streams from your address (at most {self.per_address}); "
                              "close one and try again", {"Retry-After": str(RETRY_AFTER_SECONDS)})
        if self._open[keys[2]] >= self.per_holder:
            REFUSED.labels("holder").inc()
            raise RateLimited(f"too many open event streams of this link or account (at most {self.per_holder}); "
                              "close one and try again", {"Retry-After": str(RETRY_AFTER_SECONDS)})
        for key in keys:
            self._open[key] += 1
        try:
            yield
        finally:
            for key in keys:
                self._open[key] -= 1
                if self._open[key] <= 0:
                    del self._open[key]


def client_address(request: web.Request) -> str:
    """The address the caps count by: the client's network (an IPv4 address, an IPv6 /64), as the rate limits
    see it (behind trusted proxies)."""
    trusted = request.app[TRUSTED_PROXIES]
    return network_of((client_ip(request, trusted) if trusted else request.remote) or "unknown")
