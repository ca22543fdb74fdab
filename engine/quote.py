"""Quotes: a fiat total at a locked rate becomes an exact crypto amount in base units.

Rounding rule (in the merchant's favour): the amount is the fiat total divided by the rate (fiat per
whole coin), scaled to base units, and rounded UP to the next base unit, so the merchant never
receives less than the quoted fiat value at the locked rate. Decimal arithmetic with 80 digits of
precision is exact for every amount NUMERIC(78,0) can hold; no float is involved.
"""

from __future__ import annotations

import decimal
from decimal import Decimal


class QuoteError(ValueError):
    pass


_CONTEXT = decimal.Context(prec=80, rounding=decimal.ROUND_CEILING, traps=[decimal.InvalidOperation])


def crypto_amount(fiat_total: Decimal, rate: Decimal, decimals: int) -> int:
    """Base units to request for `fiat_total` at `rate` (fiat per 1 coin), rounded up."""
    if not fiat_total.is_finite() or fiat_total <= 0:
        raise QuoteError("the fiat total must be positive")
    if not rate.is_finite() or rate <= 0:
        raise QuoteError("the rate must be positive")
    if not 0 <= decimals <= 36:
        raise QuoteError("decimals must be between 0 and 36")
    units = _CONTEXT.multiply(_CONTEXT.divide(fiat_total, rate), Decimal(10) ** decimals)
    amount = int(units.to_integral_value(rounding=decimal.ROUND_CEILING))
    return max(amount, 1)


def fiat_value(amount: int, rate: Decimal, decimals: int) -> Decimal:
    """What `amount` base units are worth at `rate` (exact; for display and the ledger)."""
    return _CONTEXT.divide(_CONTEXT.multiply(Decimal(amount), rate), Decimal(10) ** decimals)
