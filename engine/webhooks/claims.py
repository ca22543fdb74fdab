"""A refund's claim token, filled into its event on the way out to a receiver allowed to hold it, and
taken out for everyone else.

Events never carry the token (beanpay.events.payloads.TransferPayload): they are stored, relayed and
read by everyone who watches a shop. It is a MAC of the refund's id, so it is made again where it may
go: the shop stream of a principal holding refunds:create, and webhook endpoints marked refund_claims
(only such a principal may mark one). Whatever else goes out has it blanked, so an event stored before
the token left events (a delivery redelivered, a process of the previous release during a rolling
deploy) never hands it on either."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

from beanpay.engine.transfers.service import claim_token
from beanpay.events import catalog
from beanpay.events.payloads import TransferPayload

# a refund's events (refund.*, payment.refunded) ride with its payment's; payouts' have no claim
CLAIM_EVENTS = frozenset(e.name for e in catalog.ALL if e.payload is TransferPayload and e.topic == catalog.PAYMENTS)


def _set(data: dict[str, Any], secret: str | None) -> bool:
    """Fill in (with `secret`) or blank (None) a refund's claim token in its decoded payload; whether it changed."""
    if data.get("kind") != "refund" or "claim_token" not in data:
        return False
    if secret is None:
        if data["claim_token"] is None:
            return False
        data["claim_token"] = None
        return True
    try:
        refund_id = uuid.UUID(str(data["transfer_id"]))
    except (KeyError, ValueError):
        return False
    data["claim_token"] = claim_token(refund_id, secret)
    return True


def with_claim(event_type: str, payload: bytes, secret: str | None) -> bytes:
    """An event's payload JSON with its refund's claim token filled in (`secret`) or blanked (None)."""
    if event_type not in CLAIM_EVENTS or (secret is None and b'"claim_token":null' in payload):
        return payload
    data = msgspec.json.decode(payload)
    return msgspec.json.encode(data) if isinstance(data, dict) and _set(data, secret) else payload


def body_with_claim(event_type: str, body: str, secret: str | None) -> str:
    """A webhook body ({type, timestamp, data}) with the refund's claim token filled in or blanked."""
    if event_type not in CLAIM_EVENTS or (secret is None and '"claim_token":null' in body):
        return body
    whole = msgspec.json.decode(body)
    if isinstance(whole, dict) and isinstance(whole.get("data"), dict) and _set(whole["data"], secret):
        return msgspec.json.encode(whole).decode()
    return body
