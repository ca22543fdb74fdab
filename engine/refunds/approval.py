"""Approving a claimed refund: its amount fixed, the shop's balance debited, and how it is sent decided:
Bitcoin by a PSBT the wallet's owner signs; EVM by the shop's payout hot wallet if one is configured,
else by a transaction the merchant signs in its own wallet."""

from __future__ import annotations

from decimal import Decimal

from beanpay import audit
from beanpay.chains.bitcoin.rpc import BitcoinRpc
from beanpay.config import Settings
from beanpay.db import Connection, fetchrow_as
from beanpay.engine.lifecycle import IllegalTransition
from beanpay.engine.refunds import bitcoin, evm, rules, service
from beanpay.engine.refunds.rules import AmountError, RefundStatus
from beanpay.engine.refunds.service import SQL, RefundRow
from beanpay.errors import InvalidInput


async def approve(conn: Connection, settings: Settings, refund: RefundRow, *, rate: Decimal | None,
                  btc: BitcoinRpc | None, actor: audit.Actor) -> RefundRow:
    """Approve (the refund row is locked by the caller). A fiat_fixed refund's amount is its fiat at
    `rate`, the rate now; the others were fixed when issued."""
    amount = refund.amount
    if refund.variant == "fiat_fixed":
        try:
            assert refund.fiat_amount is not None
            amount = rules.net_amount(rules.gross_amount(
                "fiat_fixed", received=0, expected=0, fiat_paid=Decimal(0), rate=rate, decimals=refund.decimals,
                fiat_amount=refund.fiat_amount, custom=None), refund.fee_bps)
        except AmountError as exc:
            raise InvalidInput("the refund cannot be approved", [{"field": exc.field, "message": exc.message}]) \
                from None
    assert amount is not None
    secret = settings.jwt_secret or ""
    if refund.chain == service.BITCOIN:
        method, status = "psbt", RefundStatus.AWAITING_SIGNATURE
    elif evm.hot_wallet(settings, refund) is not None:
        method, status = "hot_wallet", RefundStatus.SENDING
    else:
        method, status = "external", RefundStatus.AWAITING_SIGNATURE
    after = await service.approve(conn, refund, amount=amount, rate=rate if refund.variant == "fiat_fixed" else None,
                                  method=method, status=status, secret=secret, actor=actor)
    if method == "psbt":
        assert btc is not None
        after = await bitcoin.prepare(conn, settings, btc, after)
    return after


async def resend(conn: Connection, settings: Settings, refund: RefundRow, *, btc: BitcoinRpc | None,
                 actor: audit.Actor) -> RefundRow:
    """A failed refund (its transaction dropped, replaced, or the hot wallet's limit reached) is sent
    again the way it was approved: a fresh PSBT, a fresh transaction to sign, or the hot wallet again."""
    target = RefundStatus.SENDING if refund.method == "hot_wallet" else RefundStatus.AWAITING_SIGNATURE
    rules.transition(refund.status, target)
    after = await fetchrow_as(conn, SQL.resend, RefundRow, refund.id, target.value)
    if after is None:
        raise IllegalTransition("refund", refund.status, target)
    await service.record(conn, settings.jwt_secret or "", refund, after, actor)
    if after.method == "psbt":
        assert btc is not None
        after = await bitcoin.prepare(conn, settings, btc, after)
    return after
