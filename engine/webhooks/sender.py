"""Sending due deliveries: signed, with a timeout, retried on a schedule kept in Postgres.

A delivery is leased by moving its next attempt past the request timeout (FOR UPDATE SKIP LOCKED),
so several senders share the work and a sender that dies mid-request only delays its leases; the
receiver may then see a message twice, and dedupes by `webhook-id` as the spec asks.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp
import structlog
from prometheus_client import Counter, Histogram

from beanpay.config import Settings
from beanpay.db import Pool, transaction
from beanpay.engine.webhooks.fanout import NOTIFY
from beanpay.engine.webhooks.schedule import next_delay, retryable
from beanpay.engine.webhooks.signing import signed_headers
from beanpay.listen import listen, wait_wake

log = structlog.get_logger("webhooks")

ATTEMPTS = Counter("beanpay_webhook_attempts_total", "Webhook delivery attempts", ["outcome"])
LATENCY = Histogram("beanpay_webhook_request_seconds", "Webhook request duration")

LEASE = """UPDATE webhook_deliveries d SET attempts = d.attempts + 1, next_attempt_at = now() + $2::interval
           FROM webhook_endpoints e
           WHERE d.id IN (SELECT id FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= now()
                          ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
             AND e.id = d.endpoint_id
           RETURNING d.id, d.event_id, d.body, d.attempts, e.url, e.secret, e.enabled"""


class Sender:
    def __init__(self, settings: Settings, pool: Pool, batch: int = 100) -> None:
        self.settings, self.pool, self.batch = settings, pool, batch
        self.timeout = aiohttp.ClientTimeout(total=settings.webhook_timeout_seconds)
        self._wake = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        listener = asyncio.create_task(listen(self.settings.dsn, NOTIFY, self._wake, stop))
        async with aiohttp.ClientSession(timeout=self.timeout) as session:
            try:
                while not stop.is_set():
                    try:
                        n = await self.send_due(session)
                    except Exception as exc:
                        log.warning("webhook sending failed", error=repr(exc))
                        n = 0
                    if n < self.batch:
                        await wait_wake(self._wake, 0.5)
            finally:
                listener.cancel()

    async def send_due(self, session: aiohttp.ClientSession) -> int:
        lease = dt.timedelta(seconds=self.settings.webhook_timeout_seconds + 30)
        async with transaction(self.pool) as conn:
            due = await conn.fetch(LEASE, self.batch, lease)
        if not due:
            return 0
        outcomes = await asyncio.gather(*(self._deliver(session, d) for d in due))
        # one transaction for the batch's results: per-delivery writes cost more than the requests
        async with transaction(self.pool) as conn:
            await conn.execute(
                """UPDATE webhook_deliveries d SET status = o.status, last_status = o.code, last_error = o.error,
                          delivered_at = CASE WHEN o.status = 'succeeded' THEN now() END,
                          next_attempt_at = CASE WHEN o.status = 'pending' THEN now() + o.delay
                                                 ELSE d.next_attempt_at END
                   FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[], $5::interval[])
                        AS o(id, status, code, error, delay)
                   WHERE d.id = o.id""",
                [o.id for o in outcomes], [o.status for o in outcomes], [o.code for o in outcomes],
                [o.error for o in outcomes], [o.delay for o in outcomes])
            await conn.execute(
                """INSERT INTO webhook_attempts (delivery_id, attempt, status_code, error, duration_ms)
                   SELECT * FROM unnest($1::uuid[], $2::int[], $3::int[], $4::text[], $5::int[])""",
                [o.id for o in outcomes], [o.attempt for o in outcomes], [o.code for o in outcomes],
                [o.error for o in outcomes], [o.duration_ms for o in outcomes])
        return len(due)

    async def _deliver(self, session: aiohttp.ClientSession, d: Any) -> Outcome:
        status: int | None = None
        error: str | None = None
        started = time.perf_counter()
        if not d["enabled"]:
            error = "endpoint disabled"
        else:
            headers = signed_headers(d["secret"], str(d["event_id"]), d["body"], dt.datetime.now(dt.UTC))
            try:
                async with session.post(d["url"], data=d["body"].encode(), headers=headers,
                                        allow_redirects=False) as resp:
                    status = resp.status
                    await resp.read()
            except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
                error = repr(exc)[:500]
        elapsed = time.perf_counter() - started
        LATENCY.observe(elapsed)
        ok = status is not None and 200 <= status < 300
        final = ok or not d["enabled"] or not retryable(status) or d["attempts"] >= self.settings.webhook_max_attempts
        outcome = "succeeded" if ok else ("failed" if final else "retry")
        ATTEMPTS.labels(outcome).inc()
        delay = dt.timedelta(seconds=next_delay(d["attempts"], base=self.settings.webhook_backoff_seconds,
                                                cap=self.settings.webhook_backoff_cap_seconds))
        if error is None and not ok:
            error = f"HTTP {status}"
        if outcome != "succeeded":
            log.info("webhook not delivered", delivery=str(d["id"]), attempt=d["attempts"], status=status,
                     error=error, final=final)
        return Outcome(d["id"], "pending" if outcome == "retry" else outcome, status, error, delay, d["attempts"],
                       int(elapsed * 1000))


@dataclass(frozen=True, slots=True)
class Outcome:
    id: uuid.UUID
    status: str  # pending (retry later) | succeeded | failed
    code: int | None
    error: str | None
    delay: dt.timedelta
    attempt: int
    duration_ms: int


async def redeliver(pool: Pool, delivery_id: Any) -> bool:
    """Queue a delivery again, whatever its state: a fresh schedule, attempts reset."""
    async with transaction(pool) as conn:
        done = await conn.fetchval(
            """UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = now(),
                      delivered_at = NULL WHERE id = $1 RETURNING true""", delivery_id)
        if done:
            await conn.execute(f"NOTIFY {NOTIFY}")
        return bool(done)
