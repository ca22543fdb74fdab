"""Pure engine helpers: payment URIs, retry schedule, webhook signatures, base-unit text, lifecycle."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from beanpay.engine.assets import Asset
from beanpay.engine.lifecycle import IllegalTransition, order_transition
from beanpay.engine.payment_uri import coins, payment_uri
from beanpay.engine.webhooks.schedule import next_delay, retryable
from beanpay.engine.webhooks.signing import new_secret, signed_headers
from beanpay.money import base_units


def test_bip21_amount_is_exact_and_plain() -> None:
    btc = Asset("btc", "BTC", 8)
    assert payment_uri(btc, "bcrt1qxyz", 6_923) == "bitcoin:bcrt1qxyz?amount=0.00006923"
    assert payment_uri(btc, "bc1q", 100_000_000) == "bitcoin:bc1q?amount=1"
    assert coins(2_100_000_000_000_000, 8) == "21000000"
    assert coins(1, 18) == "0.000000000000000001"


def test_eip681_for_eth_and_tokens() -> None:
    eth = Asset("eth", "ETH", 18, None, 31337)
    usdc = Asset("eth", "tUSDC", 6, "0x5FbDB2315678afecb367f032d93F642f64180aa3", 31337)
    assert payment_uri(eth, "0xAbC", 10**18) == "ethereum:0xAbC@31337?value=1000000000000000000"
    assert payment_uri(usdc, "0xAbC", 4_500_000) == (
        "ethereum:0x5FbDB2315678afecb367f032d93F642f64180aa3@31337/transfer?address=0xAbC&uint256=4500000")


def test_base_units_never_in_exponent_form() -> None:
    assert base_units(Decimal("3.2812500E+15")) == "3281250000000000"
    assert base_units(2**256 - 1) == str(2**256 - 1)
    with pytest.raises(ValueError):
        base_units(Decimal("1.5"))


def test_retry_schedule_doubles_caps_and_jitters() -> None:
    rng = random.Random(7)
    delays = [next_delay(n, base=5, cap=60, rng=rng) for n in range(1, 8)]
    for n, d in enumerate(delays, start=1):
        nominal = min(60, 5 * 2 ** (n - 1))
        assert 0.8 * nominal <= d <= 1.2 * nominal
    assert [retryable(s) for s in (None, 429, 500, 503, 400, 404, 410)] == [True, True, True, True, False, False,
                                                                             False]


def test_signature_verifies_with_the_reference_library_and_catches_tampering() -> None:
    secret = new_secret()
    body = '{"type":"order.confirmed","timestamp":"2026-11-24T10:00:00Z","data":{"order_id":"x"}}'
    headers = signed_headers(secret, "msg_1", body, dt.datetime.now(dt.UTC))
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(secret).verify(body, headers)["type"] == "order.confirmed"
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace("x", "y"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)


def test_reorg_may_take_a_confirmed_order_back_but_nothing_else() -> None:
    assert order_transition("confirmed", "pending") == "pending"
    for current in ("preparing", "ready", "completed", "cancelled"):
        with pytest.raises(IllegalTransition):
            order_transition(current, "pending")
