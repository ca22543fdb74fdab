"""What the deposits to an order's address mean for its payment. Pure.

Statuses: pending (nothing seen), processing (something seen, not all confirmed), confirmed (the
confirmed sum covers the amount within the tolerance), underpaid (all confirmed, short beyond the
tolerance), overpaid (all confirmed, more than asked; the order is paid, the excess is owed back),
late (the first deposit came after the payment window), expired (window over, nothing seen).
Several deposits are summed; an orphaned deposit (a reorg), or one seen unconfirmed whose transaction was
replaced or dropped, simply no longer counts, which takes the payment back a state.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum


class PaymentStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    CONFIRMED = "confirmed"
    UNDERPAID = "underpaid"
    OVERPAID = "overpaid"
    LATE = "late"
    EXPIRED = "expired"


PAID = frozenset({PaymentStatus.CONFIRMED, PaymentStatus.OVERPAID})
LIVE = frozenset({"seen", "confirming", "confirmed"})  # what counts (not orphaned, replaced or dropped)
EXCEPTIONS = frozenset({PaymentStatus.UNDERPAID, PaymentStatus.OVERPAID, PaymentStatus.LATE})


@dataclass(frozen=True, slots=True)
class Deposit:
    amount: int  # base units
    status: str  # seen | confirming | confirmed | orphaned | replaced | dropped
    first_seen_at: dt.datetime


def tolerance(expected: int, basis_points: int) -> int:
    """How far short a payment may fall and still count (rounded down, in base units)."""
    return expected * basis_points // 10_000


def assess(expected: int, deposits: list[Deposit], *, expires_at: dt.datetime, now: dt.datetime,
           underpay_tolerance_bps: int = 0) -> PaymentStatus:
    live = [d for d in deposits if d.status in LIVE]
    if not live:
        return PaymentStatus.EXPIRED if now >= expires_at else PaymentStatus.PENDING
    if min(d.first_seen_at for d in live) > expires_at:
        return PaymentStatus.LATE
    if any(d.status != "confirmed" for d in live):
        return PaymentStatus.PROCESSING
    received = sum(d.amount for d in live)
    if received > expected:
        return PaymentStatus.OVERPAID
    if received < expected - tolerance(expected, underpay_tolerance_bps):
        return PaymentStatus.UNDERPAID
    return PaymentStatus.CONFIRMED
