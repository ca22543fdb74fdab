"""Sending due notifications: email through SMTP (aiosmtplib), Web Push signed with the VAPID key and
encrypted to the device's keys (pywebpush, over aiohttp), with retries on a schedule kept in Postgres.

A row is leased before it is sent, so several senders share the work. A sender that dies after the
SMTP server accepted a message but before it was marked sent sends it again after the lease: the
message keeps its Message-ID, so the mailbox can tell it is the same.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from email.message import EmailMessage

import aiohttp
import aiosmtplib
import msgspec
import structlog
from prometheus_client import Counter
from pywebpush import WebPushException, webpush_async

from beanpay import queries
from beanpay.batchloop import BatchLoop
from beanpay.config import Settings
from beanpay.db import Connection, Database, fetch_as
from beanpay.engine.notifications import vapid
from beanpay.engine.notifications.fanout import NOTIFY
from beanpay.engine.webhooks import egress
from beanpay.engine.webhooks.schedule import next_delay
from beanpay.events import catalog
from beanpay.events.outbox import Event, emit_many
from beanpay.events.payloads import NotificationPayload
from beanpay.listen import listen
from beanpay.tasks import supervise

log = structlog.get_logger("notifications")
SQL = queries.load("beanpay.engine", "notifications.sql")
SENT = Counter("beanpay_notifications_total", "Notification send attempts", ["channel", "outcome"])
LEASE = dt.timedelta(seconds=60)


class Due(msgspec.Struct):
    id: uuid.UUID
    event_id: uuid.UUID
    channel: str
    user_id: uuid.UUID | None
    order_id: uuid.UUID | None
    recipient: str
    title: str
    body: str
    link: str | None
    attempts: int
    created_at: dt.datetime


class Subscription(msgspec.Struct):
    id: uuid.UUID
    endpoint: str
    p256dh: str
    auth: str


def queues(due: list[Due]) -> list[list[Due]]:
    """One queue per address, oldest first: a device is told "Payment received" before "Your order is ready"
    (sent at once they may arrive the other way round); different addresses are sent side by side."""
    by_address: dict[tuple[str, str], list[Due]] = {}
    for d in sorted(due, key=lambda d: d.created_at):
        by_address.setdefault((d.channel, d.recipient), []).append(d)
    return list(by_address.values())


class Refused(Exception):
    """Refused for good: retrying will not help."""


class NotificationSender:
    def __init__(self, settings: Settings, db: Database, batch: int = 50) -> None:
        self.settings, self.db, self.batch = settings, db, batch
        self.vapid = vapid.load(settings.vapid_private_key) if settings.vapid_private_key else None
        self._wake = asyncio.Event()
        self._sending: BatchLoop | None = None

    @property
    def failing(self) -> bool:
        """The last round could not reach the database (readiness says so)."""
        return self._sending is not None and self._sending.failing

    async def run(self, stop: asyncio.Event) -> None:
        """Rows wait in their table while the database is away: nothing is lost."""
        connector = aiohttp.TCPConnector(**egress.connector_options(self.settings.webhook_allow_private))
        async with aiohttp.ClientSession(connector=connector) as session:
            sending = self._sending = BatchLoop("notification-sender", lambda: self.send_due(session), self.batch, 1.0,
                                                wake=self._wake)
            await supervise({"notification-listener": listen(self.settings.dsn, NOTIFY, self._wake, stop),
                             "notification-sender": sending.run(stop)})

    async def send_due(self, session: aiohttp.ClientSession) -> int:
        async with self.db.transaction() as conn:
            due = await fetch_as(conn, SQL.lease_due, Due, self.batch, LEASE)
            subs = {s.id: s for s in await fetch_as(conn, SQL.subscriptions, Subscription,
                                                     [uuid.UUID(d.recipient) for d in due if d.channel == "push"])}
        await asyncio.gather(*(self._in_turn(session, queue, subs) for queue in queues(due)))
        return len(due)

    async def _in_turn(self, session: aiohttp.ClientSession, queue: list[Due],
                       subs: dict[uuid.UUID, Subscription]) -> None:
        for d in queue:
            await self._one(session, d, subs)

    async def _one(self, session: aiohttp.ClientSession, d: Due, subs: dict[uuid.UUID, Subscription]) -> None:
        try:
            if d.channel == "email":
                await self._email(d)
            else:
                sub = subs.get(uuid.UUID(d.recipient))
                if sub is None:
                    raise Refused("the push subscription is gone")
                await self._push(session, d, sub)
        except Refused as exc:
            SENT.labels(d.channel, "refused").inc()
            async with self.db.transaction() as conn:
                await conn.fetchval(SQL.mark_failed, d.id, str(exc)[:500])
            return
        except Exception as exc:  # the server or service is away or said try later
            SENT.labels(d.channel, "retry").inc()
            async with self.db.transaction() as conn:
                await self._retry(conn, d, repr(exc)[:500])
            return
        SENT.labels(d.channel, "sent").inc()
        async with self.db.transaction() as conn:
            if await conn.fetchval(SQL.mark_sent, d.id):
                await emit_many(conn, [Event(catalog.NOTIFICATION_SENT, d.id, NotificationPayload(
                    d.id, d.event_id, d.channel, d.user_id, d.order_id, "sent"))])

    async def _retry(self, conn: Connection, d: Due, error: str) -> None:
        if d.attempts >= self.settings.notification_max_attempts:
            await conn.fetchval(SQL.mark_failed, d.id, error)
            return
        delay = next_delay(d.attempts, base=self.settings.notification_backoff_seconds, cap=3600.0)
        await conn.execute(SQL.mark_retry, d.id, dt.timedelta(seconds=delay), error)

    async def _email(self, d: Due) -> None:
        s = self.settings
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = s.smtp_from, d.recipient, d.title
        message["Message-ID"] = f"<{d.id}@beanpay>"  # the same on a resend: the mailbox can tell
        message.set_content(d.body + (f"\n\n{d.link}\n" if d.link else "\n"))
        try:
            await aiosmtplib.send(message, hostname=s.smtp_host, port=s.smtp_port, username=s.smtp_username,
                                  password=s.smtp_password, start_tls=s.smtp_starttls, timeout=s.smtp_timeout_seconds)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise Refused(f"the SMTP server refused the address: {exc}") from None

    async def _push(self, session: aiohttp.ClientSession, d: Due, sub: Subscription) -> None:
        if self.vapid is None:
            raise Refused("Web Push is not configured (BEANPAY_VAPID_PRIVATE_KEY)")
        data = json.dumps({"title": d.title, "body": d.body, "link": d.link, "id": str(d.id)})
        try:
            await webpush_async({"endpoint": sub.endpoint, "keys": {"p256dh": sub.p256dh, "auth": sub.auth}},
                                data=data, vapid_private_key=self.vapid,
                                vapid_claims={"sub": self.settings.vapid_subject}, ttl=24 * 3600,
                                aiohttp_session=session)
        except WebPushException as exc:
            status = getattr(exc.response, "status", None) or getattr(exc.response, "status_code", None)
            if status in (404, 410):
                async with self.db.transaction() as conn:
                    await conn.execute(SQL.subscription_gone, sub.id)
                raise Refused(f"the device unsubscribed ({status})") from None
            if status is not None and 400 <= status < 500 and status != 429:
                raise Refused(f"the push service refused it ({status})") from None
            raise
