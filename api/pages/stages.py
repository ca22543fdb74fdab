"""Where a checkout stands, as the customer should be told it. Pure: from the order and payment states."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Stage(StrEnum):
    AWAITING = "awaiting"  # nothing seen yet
    SEEN = "seen"  # in the mempool (or a block not yet counted)
    CONFIRMING = "confirming"  # n of N confirmations
    UNDERPAID = "underpaid"  # confirmed, but short: the rest is still due
    PAID = "paid"
    OVERPAID = "overpaid"  # paid, with more than asked: the difference is refunded
    LATE = "late"  # arrived after the window closed: the shop decides
    EXPIRED = "expired"  # the window closed with nothing paid
    CANCELLED = "cancelled"


PAID_ORDERS = frozenset({"confirmed", "preparing", "ready", "completed"})
OPEN = frozenset({Stage.AWAITING, Stage.SEEN, Stage.CONFIRMING, Stage.UNDERPAID})  # the customer may still pay


@dataclass(frozen=True, slots=True)
class Progress:
    stage: Stage
    confirmations: int
    required: int
    remaining: int  # base units still due (0 once paid)
    extra: int  # base units paid beyond the amount

    @property
    def payable(self) -> bool:
        """The address and amount are still worth showing."""
        return self.stage in OPEN

    @property
    def settled(self) -> bool:
        """Nothing about the payment will change any more (claims and refunds may)."""
        return self.stage in (Stage.PAID, Stage.OVERPAID, Stage.EXPIRED, Stage.CANCELLED)


def progress(order_status: str, payment_status: str, *, amount: int, received: int, confirmations: int,
             required: int) -> Progress:
    remaining, extra = max(amount - received, 0), max(received - amount, 0)
    confirmations = min(confirmations, required)
    if order_status in PAID_ORDERS:  # paid, or an underpayment the shop accepted
        stage = Stage.OVERPAID if payment_status == "overpaid" else Stage.PAID
        return Progress(stage, required, required, 0, extra)
    if order_status == "cancelled":
        return Progress(Stage.CANCELLED, confirmations, required, 0, 0)
    if payment_status == "late":
        return Progress(Stage.LATE, confirmations, required, 0, 0)
    if payment_status == "expired" or order_status == "expired":
        return Progress(Stage.EXPIRED, 0, required, 0, 0)
    if payment_status == "underpaid":
        return Progress(Stage.UNDERPAID, confirmations, required, remaining, 0)
    if payment_status == "processing":
        stage = Stage.CONFIRMING if confirmations > 0 else Stage.SEEN
        return Progress(stage, confirmations, required, remaining, extra)
    return Progress(Stage.AWAITING, 0, required, amount, 0)
