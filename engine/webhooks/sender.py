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
from urllib.parse import urlsplit

import aiohttp
import msgspec
import structlog
from prometheus_client import Counter, Gauge, Histogram

from beanpay import queries, tracing
from beanpay.batchloop import BatchLoop
from beanpay.config import Settings
from beanpay.db import Connection, Database, Pool, fetch_as
from beanpay.engine.webhooks import claims, egress
from beanpay.engine.webhooks.fanout import NOTIFY
from beanpay.engine.webhooks.schedule import next_delay, retryable
from beanpay.engine.webhooks.signing import signed_headers
from beanpay.listen import listen
from beanpay.tasks import supervise

log = structlog.get_logger("webhooks")

ATTEMPTS = Counter("beanpay_webhook_attempts_total", "Webhook delivery attempts", ["outcome"])
LATENCY = Histogram("beanpay_webhook_request_seconds", "Webhook request duration")
OVERDUE = Gauge("beanpay_webhook_overdue", "Pending deliveries more than a minute past their attempt time")
OVERDUE_SECONDS = 15.0

SQL = queries.load("beanpay.engine", "webhooks.sql")


class Due(msgspec.Struct):
    id: uuid.UUID
    event_id: uuid.UUID
    body: str  # as stored: never a refund's claim token
    attempts: int
    url: str
    secret: str
    enabled: bool
    trace_parent: str | None = None
    event_type: str = ""
    refund_claims: bool = False  # the endpoint is sent refunds' claim tokens (filled in at the request, not stored)


class WebhookSender:
    def __init__(self, settings: Settings, db: Database, batch: int = 100) -> None:
        self.settings, self.db, self.batch = settings, db, batch
        self.claim_secret = settings.jwt_secret or ""  # what refunds' claim tokens are made with
        self.timeout = aiohttp.ClientTimeout(total=settings.webhook_timeout_seconds)
        self._wake = asyncio.Event()
        self._sending: BatchLoop | None = None

    async def run(self, stop: asyncio.Event) -> None:
        async with self.session() as session:
            sending = BatchLoop("webhook-sender", lambda: self.send_due(session), self.batch, 0.5, wake=self._wake)
            self._sending = sending
            await supervise({"webhook-listener": listen(self.settings.dsn, NOTIFY, self._wake, stop),
                             "webhook-sender": sending.run(stop),
                             "webhook-overdue": BatchLoop("webhook-overdue", self._count_overdue, 1,
                                                          OVERDUE_SECONDS).run(stop)})

    @property
    def failing(self) -> bool:
        """The last round could not reach the database (deliveries wait in their table meanwhile)."""
        return self._sending is not None and self._sending.failing

    async def _count_overdue(self) -> int:
        async with self.db.acquire() as conn:
            OVERDUE.set(await conn.fetchval(SQL.count_overdue))
        return 0

    def session(self) -> aiohttp.ClientSession:
        """The HTTP client deliveries go out on: in prod it resolves to public addresses only."""
        connector = aiohttp.TCPConnector(**egress.connector_options(self.settings.webhook_allow_private))
        return aiohttp.ClientSession(timeout=self.timeout, connector=connector)

    async def send_due(self, session: aiohttp.ClientSession) -> int:
        lease = dt.timedelta(seconds=self.settings.webhook_timeout_seconds + 30)
        async with self.db.transaction() as conn:
            due = await fetch_as(conn, SQL.lease_due, Due, self.batch, lease)
        if not due:
            return 0
        outcomes = await asyncio.gather(*(self.deliver(session, d) for d in due))
        # one transaction for the batch's results: per-delivery writes cost more than the requests
        async with self.db.transaction() as conn:
            await conn.execute(SQL.record_outcomes, [o.id for o in outcomes], [o.status for o in outcomes],
                               [o.code for o in outcomes], [o.error for o in outcomes], [o.delay for o in outcomes])
            await conn.execute(SQL.record_attempts, [o.id for o in outcomes], [o.attempt for o in outcomes],
                               [o.code for o in outcomes], [o.error for o in outcomes],
                               [o.duration_ms for o in outcomes])
        return len(due)

    async def deliver(self, session: aiohttp.ClientSession, d: Due) -> Outcome:
        if not tracing.enabled:
            return await self._deliver(session, d)
        with tracing.span("deliver webhook", kind=tracing.CLIENT, parent_of=d.trace_parent,
                          attributes={"beanpay.delivery_id": str(d.id), "messaging.message.id": str(d.event_id),
                                      "beanpay.attempt": d.attempts}) as span:
            outcome = await self._deliver(session, d)
            if outcome.code is not None:
                span.set_attribute("http.response.status_code", outcome.code)
            span.set_attribute("beanpay.outcome", outcome.status)
            return outcome

    async def _deliver(self, session: aiohttp.ClientSession, d: Due) -> Outcome:
        status: int | None = None
        error: str | None = None
        started = time.perf_counter()
        if not d.enabled:
            error = "endpoint disabled"
        else:
            body = claims.body_with_claim(d.event_type, d.body, self.claim_secret if d.refund_claims else None)
            headers = signed_headers(d.secret, str(d.event_id), body, dt.datetime.now(dt.UTC))
            here = tracing.current()
            if here is not None:  # the merchant's side may continue the trace
                headers[tracing.HEADER] = here
            try:
                if not self.settings.webhook_allow_private:
                    egress.check_url_host(urlsplit(d.url).hostname)
                async with session.post(d.url, data=body.encode(), headers=headers,
                                        allow_redirects=False) as resp:
                    status = resp.status
                    await resp.read()
            except egress.Refused as exc:
                error = str(exc)[:500]
            except aiohttp.ClientConnectorError as exc:
                # a refusal by the resolver arrives wrapped; say it plainly, without the address tried
                error = str(exc.os_error)[:500] if isinstance(exc.os_error, egress.Refused) else repr(exc)[:500]
            except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
                error = repr(exc)[:500]
        elapsed = time.perf_counter() - started
        LATENCY.observe(elapsed)
        ok = status is not None and 200 <= status < 300
        final = ok or not d.enabled or not retryable(status) or d.attempts >= self.settings.webhook_max_attempts
        outcome = "succeeded" if ok else ("failed" if final else "retry")
        ATTEMPTS.labels(outcome).inc()
        delay = dt.timedelta(seconds=next_delay(d.attempts, base=self.settings.webhook_backoff_seconds,
                                                cap=self.settings.webhook_backoff_cap_seconds))
        if error is None and not ok:
            error = f"HTTP {status}"
        if outcome != "succeeded":
            log.info("webhook not delivered", delivery=str(d.id), attempt=d.attempts, status=status,
                     error=error, final=final)
        return Outcome(d.id, "pending" if outcome == "retry" else outcome, status, error, delay, d.attempts,
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


async def redeliver(conn: Connection, delivery_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    """Queue deliveries again, whatever their state: a fresh schedule, attempts reset (in the caller's
    transaction; the senders are woken after commit). Returns those found."""
    found = [r["id"] for r in await conn.fetch(SQL.redeliver, delivery_ids)]
    if found:
        conn.wake_after_commit(NOTIFY)
    return found


async def failed_deliveries(pool: Pool, endpoint_id: uuid.UUID) -> list[uuid.UUID]:
    return [r["id"] for r in await pool.fetch(SQL.failed_of_endpoint, endpoint_id)]
