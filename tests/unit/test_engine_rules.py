"""The engine's pure rules: order lifecycle, quotes and their rounding, payment assessment, pricing."""

import datetime as dt
import math
from decimal import Decimal
from fractions import Fraction

import pytest

from beanpay.engine.lifecycle import IllegalTransition, OrderStatus, modifiable, order_transition
from beanpay.engine.payments import Deposit, PaymentStatus, assess, tolerance
from beanpay.engine.pricing import Group, Option, PricingError, order_total, price_line
from beanpay.engine.quote import QuoteError, crypto_amount, fiat_value

T0 = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)
EXPIRES = T0 + dt.timedelta(minutes=15)


# ---- lifecycle ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("current", "target"), [
    ("pending", "confirmed"), ("pending", "cancelled"), ("pending", "expired"), ("confirmed", "preparing"),
    ("preparing", "ready"), ("ready", "completed"), ("confirmed", "completed"), ("expired", "confirmed"),
    ("confirmed", "cancelled"),  # a paid order the shop has not started on, cancelled with its refund
])
def test_legal_order_moves(current: str, target: str) -> None:
    assert order_transition(current, target) == OrderStatus(target)


@pytest.mark.parametrize(("current", "target"), [
    ("pending", "preparing"), ("completed", "pending"), ("cancelled", "confirmed"), ("ready", "preparing"),
    ("preparing", "cancelled"), ("expired", "pending"),
])
def test_illegal_order_moves_name_the_current_state(current: str, target: str) -> None:
    with pytest.raises(IllegalTransition, match=f"order is {current}; it cannot become {target}"):
        order_transition(current, target)


def test_only_unpaid_orders_change() -> None:
    assert modifiable("pending") and not modifiable("confirmed")


# ---- quotes ------------------------------------------------------------------------------------

def test_quote_rounds_up_to_the_next_base_unit() -> None:
    # 4.50 USD at 60,000 USD/BTC = 7,500 sats exactly; at 61,000 = 7,377.04... sats -> 7,378
    assert crypto_amount(Decimal("4.50"), Decimal("60000"), 8) == 7_500
    assert crypto_amount(Decimal("4.50"), Decimal("61000"), 8) == 7_378
    assert fiat_value(7_378, Decimal("61000"), 8) >= Decimal("4.50")


def test_quote_in_wei_is_exact_beyond_float_precision() -> None:
    wei = crypto_amount(Decimal("3.33"), Decimal("3123.45"), 18)
    # the oracle is exact rational arithmetic, a different method from the Decimal code under test
    assert wei == math.ceil(Fraction(333, 100) / Fraction(312345, 100) * 10**18)
    assert fiat_value(wei, Decimal("3123.45"), 18) >= Decimal("3.33")
    assert fiat_value(wei - 1, Decimal("3123.45"), 18) < Decimal("3.33")


def test_stablecoin_quote() -> None:
    assert crypto_amount(Decimal("4.10"), Decimal("1"), 6) == 4_100_000


@pytest.mark.parametrize(("fiat", "rate", "decimals"), [
    ("0", "1", 6), ("-1", "1", 6), ("1", "0", 6), ("1", "NaN", 6), ("1", "1", 40)])
def test_bad_quotes_are_refused(fiat: str, rate: str, decimals: int) -> None:
    with pytest.raises(QuoteError):
        crypto_amount(Decimal(fiat), Decimal(rate), decimals)


# ---- payments ----------------------------------------------------------------------------------

def dep(amount: int, status: str = "confirmed", minutes: int = 1) -> Deposit:
    return Deposit(amount, status, T0 + dt.timedelta(minutes=minutes))


@pytest.mark.parametrize(("deposits", "now_minutes", "expected"), [
    ([], 5, PaymentStatus.PENDING),
    ([], 20, PaymentStatus.EXPIRED),
    ([dep(1000, "seen")], 5, PaymentStatus.PROCESSING),
    ([dep(1000, "confirming")], 5, PaymentStatus.PROCESSING),
    ([dep(1000)], 5, PaymentStatus.CONFIRMED),
    ([dep(600), dep(400)], 5, PaymentStatus.CONFIRMED),  # several deposits are summed
    ([dep(600), dep(400, "confirming")], 5, PaymentStatus.PROCESSING),
    ([dep(900)], 5, PaymentStatus.UNDERPAID),
    ([dep(995)], 5, PaymentStatus.CONFIRMED),  # within the 0.5% tolerance
    ([dep(1001)], 5, PaymentStatus.OVERPAID),
    ([dep(1000, minutes=16)], 20, PaymentStatus.LATE),
    ([dep(1000, "orphaned")], 5, PaymentStatus.PENDING),  # a reorg took it back
    ([dep(1000, "orphaned"), dep(1000, "confirming")], 5, PaymentStatus.PROCESSING),
    ([dep(1000, "replaced")], 5, PaymentStatus.PENDING),  # its output sent elsewhere: nothing is coming
    ([dep(1000, "dropped")], 20, PaymentStatus.EXPIRED),  # dropped from the mempool, and the window is over
    ([dep(1000, "replaced"), dep(1000)], 5, PaymentStatus.CONFIRMED),  # a fee bump paying the same: counted once
    ([dep(1000, "replaced"), dep(1000, "seen")], 5, PaymentStatus.PROCESSING),
])
def test_payment_assessment(deposits: list[Deposit], now_minutes: int, expected: PaymentStatus) -> None:
    now = T0 + dt.timedelta(minutes=now_minutes)
    assert assess(1000, deposits, expires_at=EXPIRES, now=now, underpay_tolerance_bps=50) == expected


def test_tolerance_rounds_down() -> None:
    assert tolerance(1999, 50) == 9 and tolerance(10**18, 1) == 10**14


# ---- pricing -----------------------------------------------------------------------------------

SIZE = Group("size", (Option("small", Decimal("0")), Option("large", Decimal("0.70"))), required=True)
EXTRAS = Group("extras", (Option("shot", Decimal("0.90")), Option("syrup", Decimal("0.45"))), multiple=True)


def test_line_price_with_options() -> None:
    line = price_line(Decimal("3.90"), [SIZE, EXTRAS], {"size": ["large"], "extras": ["shot", "syrup"]}, 2, "USD")
    assert line.unit_price == Decimal("5.95") and line.total == Decimal("11.90")
    assert str(order_total([line, price_line(Decimal("2.80"), [SIZE], {"size": ["small"]}, 1, "USD")], "USD")) \
        == "14.70"


@pytest.mark.parametrize(("chosen", "field", "message"), [
    ({}, "$.customizations.size", "a choice is required"),
    ({"size": ["small", "large"]}, "$.customizations.size", "choose one option"),
    ({"size": ["huge"]}, "$.customizations.size", "no option 'huge'"),
    ({"size": ["small"], "milk": ["oat"]}, "$.customizations.milk", "no such customization on this product"),
    ({"size": ["small"], "extras": ["shot", "shot"]}, "$.customizations.extras", "an option is chosen twice"),
])
def test_bad_choices_name_the_field(chosen: dict[str, list[str]], field: str, message: str) -> None:
    with pytest.raises(PricingError) as err:
        price_line(Decimal("3.90"), [SIZE, EXTRAS], chosen, 1, "USD")
    assert (err.value.field, err.value.message) == (field, message)


# ---- claim codes -------------------------------------------------------------------------------

def test_claim_codes_are_unambiguous_and_distinct() -> None:
    from beanpay.engine.claim_codes import ALPHABET, LENGTH, new_claim_code

    codes = {new_claim_code() for _ in range(5_000)}
    assert len(codes) == 5_000
    assert all(len(c) == LENGTH and set(c) <= set(ALPHABET) for c in codes)
    assert not set("ILOU") & set(ALPHABET)


def test_claim_code_as_typed() -> None:
    from beanpay.engine.claim_codes import normalize_claim_code

    assert normalize_claim_code("ab1d-2efg") == "AB1D2EFG"
    assert normalize_claim_code("oil0 1234") == "01101234"
    assert normalize_claim_code("short") is None and normalize_claim_code("AB1D2EFU") is None
