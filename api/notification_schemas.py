"""Notifications at the edge: the in-app inbox, preferences and push subscriptions."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from msgspec import Meta, Struct

from beanpay.api.schemas import Input


class Notification(Struct):
    id: uuid.UUID
    event_type: str
    order_id: uuid.UUID | None
    title: str
    body: str
    link: str | None
    status: str  # delivered | read
    created_at: dt.datetime
    read_at: dt.datetime | None


class NotificationPage(Struct):
    items: list[Notification]
    next_cursor: str | None


class NotificationQuery(Struct, forbid_unknown_fields=True):
    cursor: str | None = None
    limit: Annotated[int, Meta(ge=1, le=100)] = 20
    unread: bool = False


class Preferences(Input):
    email: Annotated[str, Meta(max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")] | None = None
    language: Literal["en", "es"] = "en"
    email_enabled: bool = True
    push_enabled: bool = True
    in_app_enabled: bool = True


class PreferencesOut(Struct):
    email: str | None
    language: str
    email_enabled: bool
    push_enabled: bool
    in_app_enabled: bool
    updated_at: dt.datetime | None


class PushKeys(Input):
    p256dh: Annotated[str, Meta(min_length=20, max_length=200, pattern=r"^[A-Za-z0-9_-]+=*$")]
    auth: Annotated[str, Meta(min_length=8, max_length=100, pattern=r"^[A-Za-z0-9_-]+=*$")]


class PushSubscriptionIn(Input):
    """What the browser's PushManager.subscribe() returns (PushSubscription.toJSON())."""

    endpoint: Annotated[str, Meta(min_length=10, max_length=2000)]
    keys: PushKeys
    expirationTime: int | None = None


class PushSubscriptionOut(Struct):
    id: uuid.UUID
    endpoint: str
    created_at: dt.datetime


class VapidKey(Struct):
    # base64url of the uncompressed P-256 point: PushManager.subscribe's applicationServerKey; None where
    # Web Push is not configured (BEANPAY_VAPID_PRIVATE_KEY)
    public_key: str | None
