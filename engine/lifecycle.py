"""Order and payment state machines. Pure: the tables say which moves exist. An order's move is one
guarded statement whose allowed source states come from here (`order_sources`); a payment's is
checked here (`payment_transition`) and written guarded by the state it was decided from, so a row
that moved meanwhile is refused by the database rather than overwritten."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from beanpay.engine.payments import PaymentStatus
from beanpay.errors import Conflict


class OrderStatus(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"  # paid
    PREPARING = "preparing"
    READY = "ready"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class IllegalTransition(Conflict):
    """A refused move; the API answers 409 naming the current state."""

    code = "illegal_transition"

    def __init__(self, kind: str, current: str, target: str) -> None:
        super().__init__(f"{kind} is {current}; it cannot become {target}",
                         current_status=str(current), requested_status=str(target))
        self.kind, self.current, self.target = kind, str(current), str(target)


ORDER_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PENDING: frozenset({OrderStatus.CONFIRMED, OrderStatus.CANCELLED, OrderStatus.EXPIRED}),
    # paid orders: the shop works through them, or cancels one it has not started on (with its refund);
    # back to pending only when a chain reorg takes the payment away before the shop started on it
    OrderStatus.CONFIRMED: frozenset({OrderStatus.PREPARING, OrderStatus.COMPLETED, OrderStatus.PENDING,
                                      OrderStatus.CANCELLED}),
    OrderStatus.PREPARING: frozenset({OrderStatus.READY}),
    OrderStatus.READY: frozenset({OrderStatus.COMPLETED}),
    # a payment that arrives after expiry is an exception the merchant may accept
    OrderStatus.EXPIRED: frozenset({OrderStatus.CONFIRMED}),
    OrderStatus.COMPLETED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
}

P = PaymentStatus
_ACTIVE = frozenset({P.PENDING, P.PROCESSING, P.CONFIRMED, P.UNDERPAID, P.OVERPAID, P.LATE, P.EXPIRED})
# A payment is re-assessed from every deposit at its address (engine.payments.assess), so deposits
# arriving, confirming and being orphaned by reorgs move it between most states (a deposit orphaned
# after the window and mined again still counts as paid in time). What cannot happen is going back to
# pending once the window is over: late and expired never return there. tests/unit/
# test_payment_state_machine.py plays random deposit histories to show the table has every move.
PAYMENT_TRANSITIONS: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    P.PENDING: _ACTIVE - {P.PENDING},
    P.PROCESSING: _ACTIVE - {P.PROCESSING},
    P.CONFIRMED: _ACTIVE - {P.CONFIRMED},
    P.UNDERPAID: _ACTIVE - {P.UNDERPAID},
    P.OVERPAID: _ACTIVE - {P.OVERPAID},
    P.LATE: _ACTIVE - {P.LATE, P.PENDING},
    P.EXPIRED: _ACTIVE - {P.EXPIRED, P.PENDING},
}


def _sources(table: Mapping[StrEnum, frozenset[StrEnum]], target: StrEnum) -> list[str]:
    return sorted(str(s) for s, targets in table.items() if target in targets)


ORDER_SOURCES = {t: _sources(ORDER_TRANSITIONS, t) for t in OrderStatus}  # type: ignore[arg-type]


def order_transition(current: str, target: str) -> OrderStatus:
    cur, tgt = OrderStatus(current), OrderStatus(target)
    if tgt not in ORDER_TRANSITIONS[cur]:
        raise IllegalTransition("order", cur, tgt)
    return tgt


def payment_transition(current: str, target: str) -> PaymentStatus:
    cur, tgt = PaymentStatus(current), PaymentStatus(target)
    if tgt not in PAYMENT_TRANSITIONS.get(cur, frozenset()):
        raise IllegalTransition("payment", cur, tgt)
    return tgt


def order_sources(target: str) -> list[str]:
    """The states an order may move to `target` from (the guard of its UPDATE)."""
    return ORDER_SOURCES[OrderStatus(target)]


def modifiable(current: str) -> bool:
    """Items, pickup and delivery details may change only while the order is unpaid."""
    return OrderStatus(current) is OrderStatus.PENDING
