"""Capability links: an id and a MAC of it under a purpose, so holding the text is the permission and
nothing is stored to look up (an order's checkout page, a refund's claim link)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import uuid


def token(purpose: str, subject: uuid.UUID, secret: str) -> str:
    mac = hmac.new(secret.encode(), purpose.encode() + b":" + subject.bytes, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(subject.bytes + mac).decode().rstrip("=")


def subject(purpose: str, text: str, secret: str) -> uuid.UUID | None:
    """The id a token opens for `purpose`, or None if it was not made here (compared in constant time)."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, binascii.Error):
        return None
    if len(raw) != 32:
        return None
    found = uuid.UUID(bytes=raw[:16])
    return found if hmac.compare_digest(token(purpose, found, secret), text) else None
