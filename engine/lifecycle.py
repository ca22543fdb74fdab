"""Order and payment state machines. Pure: callers lock the row, ask here, then write."""

from __future__ import annotations

from enum import StrEnum


class OrderStatus(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"  # paid
    PREPARING = "preparing"
    READY = "ready"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class IllegalTransition(Exception):
    """Refused move; the API answers 409 naming the current state."""

    def __init__(self, kind: str, current: str, target: str) -> None:
        super().__init__(f"{kind} is {current}; it cannot become {target}")
        self.kind, self.current, self.target = kind, current, target


ORDER_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PENDING: frozenset({OrderStatus.CONFIRMED, OrderStatus.CANCELLED, OrderStatus.EXPIRED}),
    # paid orders: the shop works through them; cancelling a paid order needs a refund (not modelled yet)
    # back to pending only when a chain reorg takes the payment away before the shop started on it
    OrderStatus.CONFIRMED: frozenset({OrderStatus.PREPARING, OrderStatus.COMPLETED, OrderStatus.PENDING}),
    OrderStatus.PREPARING: frozenset({OrderStatus.READY}),
    OrderStatus.READY: frozenset({OrderStatus.COMPLETED}),
    # a payment that arrives after expiry is an exception the merchant may accept
    OrderStatus.EXPIRED: frozenset({OrderStatus.CONFIRMED}),
    OrderStatus.COMPLETED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
}


def order_transition(current: str, target: str) -> OrderStatus:
    cur, tgt = OrderStatus(current), OrderStatus(target)
    if tgt not in ORDER_TRANSITIONS[cur]:
        raise IllegalTransition("order", cur, tgt)
    return tgt


def modifiable(current: str) -> bool:
    """Items, pickup and delivery details may change only while the order is unpaid."""
    return OrderStatus(current) is OrderStatus.PENDING
