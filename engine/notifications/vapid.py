"""The VAPID key Web Push messages are signed with (RFC 8292): loaded from PEM or from the raw key in
base64url, as BEANPAY_VAPID_PRIVATE_KEY (or its _FILE) gives it; never stored in the database."""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from py_vapid import Vapid, Vapid01


def load(private: str) -> Vapid01:
    return Vapid.from_pem(private.encode()) if "BEGIN" in private else Vapid.from_string(private)


def public_key(private: str) -> str:
    """base64url of the uncompressed P-256 point: what a browser's PushManager.subscribe() is given."""
    point = load(private).public_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    return base64.urlsafe_b64encode(point).decode().rstrip("=")
