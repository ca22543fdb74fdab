"""The payment and order state machines cover everything deposits can do: random histories of deposits
appearing, confirming and being orphaned, time passing and orders being closed, settled after every
step exactly as the engine settles them, never make a move the tables do not have (hypothesis)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from beanpay.engine.lifecycle import OrderStatus
from beanpay.engine.payments import PaymentStatus
from beanpay.engine.rows import DepositRow
from beanpay.engine.settlement import Settling, Writes, assess_payment, order_target

T0 = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
WINDOW = dt.timedelta(minutes=15)
EXPECTED = 1_000

step = st.one_of(
    st.tuples(st.just("deposit"), st.sampled_from([500, 995, 1_000, 1_500]), st.sampled_from(["seen", "confirming"])),
    st.tuples(st.just("confirm"), st.integers(0, 5)),
    st.tuples(st.just("orphan"), st.integers(0, 5)),
    st.tuples(st.just("remine"), st.integers(0, 5)),
    st.tuples(st.just("wait"), st.sampled_from([1, 10, 20])),
    st.tuples(st.just("close")),
)


def payment(status: str, order_status: str) -> Settling:
    return Settling(uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), "eth", "ETH", EXPECTED, 0, 18, Decimal("4.50"), "USD",
                    Decimal("3200"), "0xabc", None, None, 0, status, T0 + WINDOW, None, None, 0, None, 1, "", "static",
                    order_status, uuid.uuid4())


@settings(max_examples=400, deadline=None)
@given(st.lists(step, min_size=1, max_size=12))
def test_no_history_of_deposits_makes_a_move_the_state_machines_lack(steps: list[tuple]) -> None:  # type: ignore[type-arg]
    now, deposits = T0, []
    status, order = PaymentStatus.PENDING.value, OrderStatus.PENDING
    for kind, *arg in steps:
        if kind == "deposit":
            deposits.append(DepositRow("eth", "0xabc", "ETH", f"tx{len(deposits)}", arg[0], arg[1], now, 0, None))
        elif kind in ("confirm", "orphan", "remine") and deposits:
            d = deposits[arg[0] % len(deposits)]
            d.status = {"confirm": "confirmed", "orphan": "orphaned", "remine": "confirming"}[kind]
            d.block_height = None if kind == "orphan" else 10
        elif kind == "wait":
            now += dt.timedelta(minutes=arg[0])
        elif kind == "close" and order is OrderStatus.PENDING:
            order, status = OrderStatus.CANCELLED, PaymentStatus.EXPIRED.value  # what cancelling does
        row = payment(status, order.value)
        moved = assess_payment(row, deposits, now, 50, Writes())  # raises IllegalTransition on a missing move
        if moved:
            target = order_target(PaymentStatus(moved), order, None)  # raises on a missing order move
            status, order = moved, target or order
