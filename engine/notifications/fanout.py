"""From Kafka to notification rows: each event a customer is told about becomes one row per channel and
recipient, written (unique per event, channel, recipient) before the batch's offsets are committed."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
import structlog

from beanpay import capability, queries
from beanpay.config import Settings
from beanpay.db import Connection, Database, fetch_as
from beanpay.engine.notifications.messages import NOTIFIED, Facts, compose
from beanpay.engine.transfers.service import claim_token
from beanpay.events import catalog, envelope
from beanpay.events.consumer import GroupReader
from beanpay.events.outbox import Event, emit_many
from beanpay.events.payloads import NotificationPayload

log = structlog.get_logger("notifications")
SQL = queries.load("beanpay.engine", "notifications.sql")
TOPICS = (catalog.ORDERS, catalog.PAYMENTS)  # refund events ride on payment-events
NOTIFY = "beanpay_notifications"


class _About(msgspec.Struct):
    order_id: uuid.UUID | None = None
    amount: str | None = None  # a refund's
    kind: str | None = None  # refund | payout, for a transfer's events
    transfer_id: uuid.UUID | None = None


class Reach(msgspec.Struct):
    order_id: uuid.UUID
    user_id: uuid.UUID
    shop: str
    asset: str
    decimals: int
    amount: int
    received: int
    buyer_email: str | None
    preferred_email: str | None
    language: str
    email_on: bool
    push_on: bool
    in_app_on: bool
    subscriptions: list[uuid.UUID]


class Made(msgspec.Struct):
    id: uuid.UUID
    event_id: uuid.UUID
    channel: str
    user_id: uuid.UUID | None
    order_id: uuid.UUID | None
    status: str


_about = msgspec.json.Decoder(_About).decode


def links(settings: Settings, order_id: uuid.UUID, refund_id: uuid.UUID | None) -> tuple[str, str | None]:
    """The customer's checkout page (their order's capability) and, for a refund, its claim page: made
    here, for the order's customer, since the events carry neither."""
    base, secret = settings.links_base, settings.jwt_secret or ""
    checkout = f"{base}/pay/{capability.token('checkout', order_id, secret)}"
    return checkout, (f"{base}/refunds/claim/{claim_token(refund_id, secret)}" if refund_id else None)


class Notifier(GroupReader):
    def __init__(self, settings: Settings, db: Database) -> None:
        super().__init__(settings, db, TOPICS, settings.notification_group, "notification fan-out", self.record)

    async def record(self, conn: Connection, events: list[envelope.Envelope], traces: list[str | None]) -> int:
        wanted = [(e, _about(e.payload)) for e in events if e.type in NOTIFIED]
        orders = sorted({a.order_id for _, a in wanted if a.order_id is not None})
        if not orders:
            return 0
        reach = {r.order_id: r for r in await fetch_as(conn, SQL.facts, Reach, orders)}
        rows: list[tuple[Any, ...]] = []
        for event, about in wanted:
            who = reach.get(about.order_id) if about.order_id else None
            if who is None:
                continue
            checkout, refund = links(self.settings, who.order_id,
                                     about.transfer_id if about.kind == "refund" else None)
            facts = Facts(who.shop, who.asset, who.decimals, who.amount, who.received, checkout,
                          int(about.amount) if about.amount else None, refund)
            message = compose(event.type, facts, who.language)
            if message is None:
                continue
            for channel, recipient in self._recipients(who):
                rows.append((uuid.uuid4(), event.event_id, event.type, channel,
                             None if channel == "email" and who.preferred_email is None else who.user_id,
                             recipient, who.order_id, message.title, message.body, message.link))
        if not rows:
            return 0
        made = await fetch_as(conn, SQL.record, Made, *map(list, zip(*rows, strict=True)))
        await emit_many(conn, [Event(catalog.NOTIFICATION_DELIVERED, m.id, NotificationPayload(
            m.id, m.event_id, m.channel, m.user_id, m.order_id, m.status)) for m in made if m.channel == "in_app"])
        if any(m.channel != "in_app" for m in made):
            conn.wake_after_commit(NOTIFY)
        return len(made)

    def _recipients(self, who: Reach) -> list[tuple[str, str]]:
        found = []
        if who.in_app_on:
            found.append(("in_app", str(who.user_id)))
        email = who.preferred_email or who.buyer_email
        if who.email_on and email and self.settings.smtp_host:
            found.append(("email", email))
        if who.push_on and self.settings.vapid_private_key:
            found += [("push", str(s)) for s in who.subscriptions]
        return found
