"""Sending due deliveries: signed, with a timeout, retried on a schedule kept in Postgres.

A delivery is leased by moving its next attempt past the request timeout (FOR UPDATE SKIP LOCKED),
so several senders share the work and a sender that dies mid-request only delays its leases; the
receiver may then see a message twice, and dedupes by `webhook-id` as the spec asks.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any

import aiohttp
import structlog
from prometheus_client import Counter, Histogram

from beanpay.config import Settings
from beanpay.db import Pool, transaction
from beanpay.listen import listen, wait_wake
from engine.webhooks.fanout import NOTIFY
from engine.webhooks.schedule import next_delay, retryable
from engine.webhooks.signing import signed_headers

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
        if due:
            await asyncio.gather(*(self._deliver(session, d) for d in due))
        return len(due)

    async def _deliver(self, session: aiohttp.ClientSession, d: Any) -> None:
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
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
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
        async with transaction(self.pool) as conn:
            await conn.execute(
                """UPDATE webhook_deliveries SET status = $2::text, last_status = $3, last_error = $4,
                          delivered_at = CASE WHEN $2::text = 'succeeded' THEN now() END,
                          next_attempt_at = CASE WHEN $2::text = 'pending' THEN now() + $5::interval
                                                 ELSE next_attempt_at END
                   WHERE id = $1""",
                d["id"], "pending" if outcome == "retry" else outcome, status, error, delay)
            await conn.execute(
                """INSERT INTO webhook_attempts (delivery_id, attempt, status_code, error, duration_ms)
                   VALUES ($1, $2, $3, $4, $5)""", d["id"], d["attempts"], status, error, int(elapsed * 1000))
        if outcome != "succeeded":
            log.info("webhook not delivered", delivery=str(d["id"]), attempt=d["attempts"], status=status,
                     error=error, final=final)


async def redeliver(pool: Pool, delivery_id: Any) -> bool:
    """Queue a delivery again, whatever its state: a fresh schedule, attempts reset."""
    async with transaction(pool) as conn:
        done = await conn.fetchval(
            """UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = now(),
                      delivered_at = NULL WHERE id = $1 RETURNING true""", delivery_id)
        if done:
            await conn.execute(f"NOTIFY {NOTIFY}")
        return bool(done)
