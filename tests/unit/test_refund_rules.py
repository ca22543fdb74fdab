"""The refund state machine and amounts: pure."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest

from beanpay.engine.lifecycle import IllegalTransition
from beanpay.engine.transfers import rules
from beanpay.engine.transfers.rules import AmountError, TransferStatus


def test_a_refund_moves_only_along_its_table() -> None:
    path = ["awaiting_claim", "awaiting_approval", "awaiting_signature", "in_flight", "completed"]
    for current, target in itertools.pairwise(path):
        assert rules.transition(current, target) == target
    assert rules.transition("completed", "in_flight") == "in_flight"  # a reorg took the transaction away
    assert rules.transition("failed", "sending") == "sending"  # a dropped transaction may be sent again
    for current, target in (("completed", "cancelled"), ("in_flight", "cancelled"), ("cancelled", "sending"),
                            ("awaiting_claim", "in_flight"), ("sending", "cancelled")):
        with pytest.raises(IllegalTransition):
            rules.transition(current, target)
    assert rules.transition("failed", "in_flight") == "in_flight"  # its transaction was mined after all
    assert rules.sources("in_flight") == ["awaiting_signature", "completed", "failed", "sending"]
    assert TransferStatus.CANCELLED not in rules.HOLDING


def test_amounts_per_variant_round_in_the_merchants_favour() -> None:
    common = {"received": 1_500, "expected": 1_000, "fiat_paid": Decimal("6.50"), "decimals": 8,
              "fiat_amount": None, "custom": None}
    assert rules.gross_amount("crypto_paid", rate=None, **common) == 1_500
    assert rules.gross_amount("overpaid", rate=None, **common) == 500
    # 6.50 USD at 65,000 USD/BTC is exactly 10,000 sats; at 65,001 it is 9,999.84..., rounded down
    assert rules.gross_amount("fiat_today", rate=Decimal("65000"), **common) == 10_000
    assert rules.gross_amount("fiat_today", rate=Decimal("65001"), **common) == 9_999
    assert rules.gross_amount("fiat_fixed", rate=Decimal("65000"), **{**common, "fiat_amount": Decimal("1.30")}) \
        == 2_000
    assert rules.net_amount(1_000, 150) == 985 and rules.net_amount(999, 1) == 998  # the fee share kept back
    with pytest.raises(AmountError) as exc:
        rules.gross_amount("overpaid", rate=None, **{**common, "received": 1_000})
    assert exc.value.field == "variant"
    with pytest.raises(AmountError) as exc:
        rules.gross_amount("custom", rate=None, **common)
    assert exc.value.field == "amount"


def test_a_payment_is_never_refunded_beyond_what_it_received() -> None:
    rules.check_refundable(400, received=1_000, held=600)
    with pytest.raises(AmountError) as exc:
        rules.check_refundable(401, received=1_000, held=600)
    assert exc.value.field == "amount" and "400" in exc.value.message
    with pytest.raises(AmountError):
        rules.check_refundable(0, received=1_000, held=0)
