"""When to try a failed delivery again. Pure.

Attempt n (1-based) that failed waits base * 2^(n-1), capped, then jittered by +-20% so endpoints
that failed together are not retried together. Retried: timeouts, connection errors, 5xx and 429;
any other answer is final (a 4xx means the receiver refused this message).
"""

from __future__ import annotations

import random


def retryable(status: int | None) -> bool:
    return status is None or status == 429 or status >= 500


def next_delay(attempt: int, *, base: float, cap: float, rng: random.Random | None = None) -> float:
    delay = min(cap, base * 2.0 ** (attempt - 1))
    jitter: float = (rng or random).uniform(0.8, 1.2)
    return delay * jitter
