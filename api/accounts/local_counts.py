"""Sign-in counts kept in this process while Redis does not answer: the rules of the Redis scripts
(api.ratelimit `_RESERVE`, `_REFUND`, `_TURN`, `_DONE`) over dictionaries, so an outage of Redis (or an
attacker flooding it) never turns the sign-in throttle off. Meanwhile each API process counts on its own:
with N processes an attacker gets at most N times the budgets. Bounded: past `max_keys` buckets the
expired ones are dropped, and if that is not enough, the oldest half.
"""

from __future__ import annotations

import time
from typing import Any

from beanpay.api.ratelimit import Decision, Pacing, Turn, sign_in_keys


class LocalCounts:
    def __init__(self, max_keys: int = 100_000) -> None:
        self._counts: dict[str, tuple[int, float]] = {}  # bucket -> (count, window ends), monotonic seconds
        self._marks: dict[str, float] = {}  # bucket -> expires
        self._paces: dict[str, tuple[int, float, float]] = {}  # bucket -> (attempts, latest start, expires)
        self._max = max_keys

    def reserve(self, bucket: str, limit: int, window: float) -> Decision:
        now = time.monotonic()
        count, ends = self._counts.get(bucket, (0, 0.0))
        if ends <= now:
            count, ends = 0, now + window
        if count >= limit:
            return Decision(False, limit, 0, max(1, -(-int((ends - now) * 1000) // 1000)))
        self._counts[bucket] = (count + 1, ends)
        self._bound(self._counts, now)
        return Decision(True, limit, limit - count - 1, max(1, -(-int((ends - now) * 1000) // 1000)))

    def refund(self, bucket: str) -> None:
        count, ends = self._counts.get(bucket, (0, 0.0))
        if count > 0 and ends > time.monotonic():
            self._counts[bucket] = (count - 1, ends)

    def turn(self, account: str, network: str, p: Pacing) -> Turn:
        now = time.monotonic()
        count_key, mark, own, queue = sign_in_keys(account, network)
        count, ends = self._counts.get(count_key, (0, 0.0))
        if ends <= now:
            count, ends = 0, now + p.hour
        if count < p.cap:
            lane, (admitted, wait) = 3, self._pace(own, p.free, p, now)
        elif self._marks.get(mark, 0.0) > now:
            lane, (admitted, wait) = 4, self._pace(queue, 0, p, now)
        else:
            lane, admitted, wait = 2, True, p.slow_start
        if admitted:
            self._counts[count_key] = (count + 1, ends)
            self._marks[mark] = now + p.hour
            self._bound(self._counts, now)
            self._bound(self._marks, now)
        return Turn(admitted, wait, lane)

    def done(self, account: str, network: str, turn: Turn) -> None:
        now = time.monotonic()
        count_key, mark, own, queue = sign_in_keys(account, network)
        self.refund(count_key)
        self._marks.pop(mark, None)
        paced = {3: own, 4: queue}.get(turn.lane)
        if paced is not None and (found := self._paces.get(paced)) is not None and found[0] > 0 and found[2] > now:
            self._paces[paced] = (found[0] - 1, found[1], found[2])

    def _pace(self, key: str, free: int, p: Pacing, now: float) -> tuple[bool, float]:
        n, last, expires = self._paces.get(key, (0, 0.0, 0.0))
        if expires <= now:
            n, last = 0, 0.0
        start = now
        if n >= free:
            start = max(now, last + min(p.first_gap * 2.0 ** min(n - free, 64), p.longest_gap))
        if start - now > p.longest_wait:
            return False, start - now
        self._paces[key] = (n + 1, start, now + p.quiet)
        self._bound(self._paces, now)
        return True, start - now

    def _bound(self, found: dict[str, Any], now: float) -> None:
        if len(found) <= self._max:
            return
        for key in [k for k, v in found.items() if (v if isinstance(v, float) else v[-1]) <= now]:
            del found[key]
        if len(found) > self._max:  # a flood of live buckets: forget the oldest half rather than grow
            for key in list(found)[: len(found) // 2]:
                del found[key]
