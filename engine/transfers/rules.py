"""What a transfer (a refund or a payout) may be and become, and what a refund amounts to. Pure.

A refund starts awaiting_claim (the customer gives an address), a payout awaiting_approval (the merchant
gave its address; an operator approves). Then awaiting_signature (a PSBT or transaction for the wallet's
owner to sign) or sending (a hot wallet sends) -> in_flight (on the network) -> completed (confirmed). A
reorg that drops the transaction takes a completed transfer back to in_flight; a dropped or replaced
transaction fails it, and a failed one may be sent again or cancelled, or turn out in flight after all
(its transaction, or one it was sent again with, was mined: tracking follows every transaction a transfer
ever had). Cancelled and completed are where a transfer ends (completed only while its transaction stays).
"""

from __future__ import annotations

import decimal
from collections.abc import Mapping
from decimal import Decimal
from enum import StrEnum

from beanpay.engine.lifecycle import IllegalTransition


class TransferStatus(StrEnum):
    AWAITING_CLAIM = "awaiting_claim"
    AWAITING_APPROVAL = "awaiting_approval"
    AWAITING_SIGNATURE = "awaiting_signature"
    SENDING = "sending"
    IN_FLIGHT = "in_flight"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"


R = TransferStatus
TRANSITIONS: dict[TransferStatus, frozenset[TransferStatus]] = {
    R.AWAITING_CLAIM: frozenset({R.AWAITING_APPROVAL, R.CANCELLED}),
    R.AWAITING_APPROVAL: frozenset({R.AWAITING_SIGNATURE, R.SENDING, R.CANCELLED}),
    R.AWAITING_SIGNATURE: frozenset({R.IN_FLIGHT, R.CANCELLED}),
    R.SENDING: frozenset({R.IN_FLIGHT, R.FAILED}),
    R.IN_FLIGHT: frozenset({R.COMPLETED, R.FAILED}),
    R.COMPLETED: frozenset({R.IN_FLIGHT}),
    R.FAILED: frozenset({R.AWAITING_SIGNATURE, R.SENDING, R.IN_FLIGHT, R.CANCELLED}),
    R.CANCELLED: frozenset(),
}
# a refund in these holds part of its payment (cancelled ones give it back)
HOLDING = frozenset(set(TransferStatus) - {R.CANCELLED})
# the merchant's approval is needed only where the amount was a choice, not a fact of the payment
AUTO_APPROVED = frozenset({"crypto_paid", "overpaid"})
VARIANTS = ("crypto_paid", "fiat_today", "fiat_fixed", "overpaid", "custom")


def sources(target: str) -> list[str]:
    """The states a transfer may move to `target` from (the guard of its UPDATE)."""
    tgt = TransferStatus(target)
    return sorted(str(s) for s, targets in TRANSITIONS.items() if tgt in targets)


def transition(current: str, target: str, kind: str = "transfer") -> TransferStatus:
    cur, tgt = TransferStatus(current), TransferStatus(target)
    if tgt not in TRANSITIONS[cur]:
        raise IllegalTransition(kind, cur, tgt)
    return tgt


class AmountError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


_FLOOR = decimal.Context(prec=80, rounding=decimal.ROUND_FLOOR)


def units_for_fiat(fiat: Decimal, rate: Decimal, decimals: int) -> int:
    """Base units worth `fiat` at `rate` (fiat per coin), rounded down: a refund never sends more."""
    return int(_FLOOR.multiply(_FLOOR.divide(fiat, rate), Decimal(10) ** decimals).to_integral_value(
        rounding=decimal.ROUND_FLOOR))


def gross_amount(variant: str, *, received: int, expected: int, fiat_paid: Decimal, rate: Decimal | None,
                 decimals: int, fiat_amount: Decimal | None, custom: int | None) -> int:
    """What the variant refunds before the fee kept back, in base units."""
    if variant == "crypto_paid":
        return received
    if variant == "overpaid":
        if received <= expected:
            raise AmountError("variant", "the payment was not overpaid")
        return received - expected
    if variant == "custom":
        if custom is None:
            raise AmountError("amount", "a custom refund needs its amount in base units")
        return custom
    if rate is None:
        raise AmountError("variant", "no exchange rate for this asset now; try again shortly")
    if variant == "fiat_today":
        return units_for_fiat(fiat_paid, rate, decimals)
    if variant == "fiat_fixed":
        if fiat_amount is None:
            raise AmountError("fiat_amount", "a fiat_fixed refund needs its fiat amount")
        return units_for_fiat(fiat_amount, rate, decimals)
    raise AmountError("variant", f"one of {', '.join(VARIANTS)}")


def net_amount(gross: int, fee_bps: int) -> int:
    """What is sent once the fee share kept back (basis points) is taken off, rounded down."""
    return gross * (10_000 - fee_bps) // 10_000


def check_refundable(amount: int, *, received: int, held: int) -> None:
    """A payment is never refunded beyond what it received, counting refunds still holding part of it."""
    if amount <= 0:
        raise AmountError("amount", "nothing to refund (the amount after the fee is zero)")
    rest = received - held
    if amount > rest:
        raise AmountError("amount", f"{amount} is above the refundable rest of this payment "
                                    f"({max(rest, 0)} base units)")


# The least a refund or payout sends, in base units, unless BEANPAY_TRANSFER_MINIMUMS says otherwise for the
# asset: below it a transaction's network fee costs more than it moves, and a shop's hundreds of tiny
# transfers to itself would be paid for by the wallet that sends them. Bitcoin: 1,000 sat (a one-input
# refund's fee at about 7 sat/vB); ETH: 10^13 wei (21,000 gas at about 0.5 gwei); a token: 0.01 of a unit.
NATIVE_MINIMUMS = {"BTC": 1_000, "ETH": 10**13}


def minimum_amount(chain: str, asset: str, decimals: int, *, token: bool, configured: Mapping[str, str]) -> int:
    """The least a transfer of `asset` on `chain` sends: the configured one ("chain/ASSET"), else the
    default (a token's: a hundredth of a unit, at least one base unit). Pure."""
    found = configured.get(f"{chain}/{asset}")
    if found is not None:
        return int(found)
    if not token and asset in NATIVE_MINIMUMS:
        return NATIVE_MINIMUMS[asset]
    return max(1, int(10**decimals) // 100)


def check_minimum(amount: int, minimum: int) -> None:
    """A transfer sends at least its asset's minimum (minimum_amount)."""
    if amount < minimum:
        raise AmountError("amount", f"{amount} is below {minimum} base units, the least a refund or payout of "
                                    "this asset sends (its network fee would cost more than it moves)")


def fee_room(kind: str, chain: str, asset: str, decimals: int, *, token: bool, configured: Mapping[str, str]) -> int:
    """What a payout leaves of the balance for its own network fee, debited once its transaction confirms (the
    asset's minimum, set above the chains' fees), so paying out a whole balance leaves no debt. A token's gas is
    the platform's cost and a refund's fee the shop's to bear like its refund. Pure."""
    if kind != "payout" or token:
        return 0
    return minimum_amount(chain, asset, decimals, token=False, configured=configured)
