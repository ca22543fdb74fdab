"""Custody follows the money (pure rules): who a payment's credit is held by, where its refund goes back
from, and what a payout leaves for its fee."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from beanpay.engine.rows import PaymentRow
from beanpay.engine.settlement import Received, credits_due, held_by_platform
from beanpay.engine.transfers.refunds import PaidPayment
from beanpay.engine.transfers.rules import fee_room

SHOP, WALLET, NODE = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


def payment(credited: int = 0, resolution: str | None = None) -> PaymentRow:
    return PaymentRow(uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), "btc", "BTC", 1000, 0, 8, Decimal("4.50"), "USD",
                      Decimal("60000"), "bcrt1q", None, None, 0, "pending", dt.datetime.now(dt.UTC), None, resolution,
                      credited, None, None, "", "static")


def test_a_deposit_is_held_by_its_nodes_custody_or_else_by_the_payments_wallet() -> None:
    assert held_by_platform(None, None) and not held_by_platform(None, WALLET)
    assert not held_by_platform(False, None)  # the shop's own node, though its on-chain money is the platform's
    assert held_by_platform(True, WALLET)  # the platform's node, though the shop has a wallet of its own


def test_each_custody_is_credited_its_own_part() -> None:
    total, credits = credits_due(SHOP, payment(), "confirmed", [Received(1000, False)], 0, "m")
    assert total == 1000 and [(c.amount, c.custodial) for c in credits] == [(1000, False)]
    total, credits = credits_due(SHOP, payment(), "overpaid", [Received(1000, True), Received(300, False)], 0, "m")
    assert total == 1300 and sorted((c.amount, c.custodial) for c in credits) == [(300, False), (1000, True)]


def test_a_second_look_moves_only_what_changed_and_a_reorg_takes_back_from_whoever_held_it() -> None:
    paid = payment(credited=1300)
    _, credits = credits_due(SHOP, paid, "overpaid", [Received(1000, True), Received(300, False)], 1000, "m")
    assert credits == []
    _, credits = credits_due(SHOP, paid, "confirmed", [Received(1000, True)], 1000, "m")  # the node's 300 is gone
    assert [(c.amount, c.custodial) for c in credits] == [(-300, False)]
    _, credits = credits_due(SHOP, paid, "processing", [], 1000, "m")  # nothing counts while unconfirmed
    assert sorted((c.amount, c.custodial) for c in credits) == [(-1000, True), (-300, False)]


def test_late_money_is_credited_only_once_accepted() -> None:
    assert credits_due(SHOP, payment(), "late", [Received(1000, True)], 0, "m") == (0, [])
    total, credits = credits_due(SHOP, payment(resolution="accepted"), "late", [Received(1000, True)], 0, "m")
    assert total == 1000 and [(c.amount, c.custodial) for c in credits] == [(1000, True)]


def paid(credited: int, custodial: int, *, wallet: uuid.UUID | None = None, node: uuid.UUID | None = None,
         held: int = 0, held_custodial: int = 0) -> PaidPayment:
    return PaidPayment(uuid.uuid4(), uuid.uuid4(), SHOP, "confirmed", wallet, "btc", "BTC", 8, None, 1000, credited,
                       Decimal("4.50"), "USD", "confirmed", None, credited, held, custodial, held_custodial, node,
                       "02ab" if node else None, node is not None)


def test_a_refund_goes_back_from_the_custody_that_received_the_payment() -> None:
    platform = paid(1000, 1000).source()
    assert platform.custodial and platform.wallet_id is None and platform.credited == 1000
    own_wallet = paid(1000, 0, wallet=WALLET).source()
    assert not own_wallet.custodial and own_wallet.wallet_id == WALLET and own_wallet.node_id is None
    own_node = paid(1000, 0, node=NODE).source()
    assert not own_node.custodial and own_node.wallet_id is None and own_node.node_id == NODE
    mixed = paid(1300, 1000, node=NODE, held=400, held_custodial=100).source()  # paid twice: its larger part
    assert mixed.custodial and (mixed.credited, mixed.held) == (1000, 100)


def test_a_payout_of_a_native_asset_leaves_room_for_its_fee_and_a_refund_or_token_does_not() -> None:
    assert fee_room("payout", "btc", "BTC", 8, token=False, configured={}) == 1000
    assert fee_room("payout", "eth", "ETH", 18, token=False, configured={"eth/ETH": "5"}) == 5
    assert fee_room("payout", "eth", "tUSDC", 6, token=True, configured={}) == 0
    assert fee_room("refund", "btc", "BTC", 8, token=False, configured={}) == 0
