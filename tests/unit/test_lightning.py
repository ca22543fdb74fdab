"""Lightning's pure rules: the invoice amount, the unified URI, when a node cannot take a payment, and what a
customer's refund invoice must be."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from beanpay.chains.lightning.lnd import DecodedInvoice
from beanpay.engine.lightning.invoices import (
    amount_msat,
    description,
    description_hash,
    unavailable_reason,
    unified_uri,
)
from beanpay.engine.lightning.nodes import NodeRow
from beanpay.engine.lightning.refunds import check_invoice

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


def _node(health: str = "ready", inbound: int | None = 10_000_000) -> NodeRow:
    return NodeRow(uuid.uuid4(), None, "https://node", "cert", None, "02" + "ab" * 32, "alias", 0, health, None,
                   None if inbound is None else Decimal(inbound), NOW)


def test_the_invoice_asks_exactly_the_quoted_sats_and_names_its_order() -> None:
    assert amount_msat(6924) == 6_924_000
    order = uuid.uuid4()
    text = description(order, "Bean There", Decimal("4.50"), "USD")
    assert str(order) in text and "4.50 USD" in text
    assert len(description_hash(text)) == 32 and description_hash(text) != description_hash(text + " ")


def test_the_unified_uri_carries_the_invoice_upper_case_for_a_compact_qr() -> None:
    uri = unified_uri("bitcoin:bcrt1qabc?amount=0.00006924", "lnbcrt69240n1pxyz")
    assert uri == "bitcoin:bcrt1qabc?amount=0.00006924&lightning=LNBCRT69240N1PXYZ"


def test_a_node_that_cannot_take_the_amount_says_why() -> None:
    assert unavailable_reason(None, 1000) == "no Lightning node is configured for this shop"
    assert unavailable_reason(_node("down"), 1000) is not None
    assert unavailable_reason(_node("not_synced"), 1000) is not None
    assert "inbound liquidity" in (unavailable_reason(_node(inbound=999), 1000) or "")
    assert unavailable_reason(_node(inbound=1000), 1000) is None
    assert unavailable_reason(_node(inbound=None), 1000) is None  # a macaroon that cannot read balances


def test_a_refund_invoice_must_be_for_the_amount_live_long_enough_and_someone_elses() -> None:
    own = "02" + "cd" * 32
    good = DecodedInvoice("03" + "ef" * 32, "aa" * 32, num_msat=150_000_000, timestamp=int(NOW.timestamp()),
                          expiry=3600)
    assert check_invoice(good, amount=150_000, own_pubkey=own, now=NOW) is None
    short = DecodedInvoice(good.destination, good.payment_hash, num_msat=149_999_000, timestamp=good.timestamp,
                           expiry=3600)
    assert "exactly 150000 sat" in (check_invoice(short, amount=150_000, own_pubkey=own, now=NOW) or "")
    soon = DecodedInvoice(good.destination, good.payment_hash, num_msat=good.num_msat, timestamp=good.timestamp,
                          expiry=60)
    assert "expires too soon" in (check_invoice(soon, amount=150_000, own_pubkey=own, now=NOW) or "")
    mine = DecodedInvoice(own, good.payment_hash, num_msat=good.num_msat, timestamp=good.timestamp, expiry=3600)
    assert "own node" in (check_invoice(mine, amount=150_000, own_pubkey=own, now=NOW) or "")
