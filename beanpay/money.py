"""Fiat amounts: Decimal, never float, with the minor units of their currency."""

from __future__ import annotations

from decimal import Decimal

MAX_FIAT = Decimal("9999999999")  # NUMERIC(12,2) holds ten integer digits

# ISO 4217 minor units of the currencies shops may price in
MINOR_UNITS: dict[str, int] = {"USD": 2, "EUR": 2, "GBP": 2, "CHF": 2, "CAD": 2, "AUD": 2, "JPY": 0, "KRW": 0}


def minor_units(currency: str) -> int:
    try:
        return MINOR_UNITS[currency]
    except KeyError:
        raise ValueError(f"unsupported currency {currency!r}; one of {', '.join(sorted(MINOR_UNITS))}") from None


def check_fiat(amount: Decimal, currency: str, *, signed: bool = False) -> str | None:
    """None when `amount` is a valid price (or, `signed`, a price delta) in `currency`, else why not."""
    if not amount.is_finite():
        return "must be a finite number"
    if amount < 0 and not signed:
        return "must not be negative"
    if abs(amount) > MAX_FIAT:
        return f"must be at most {MAX_FIAT}"
    places = minor_units(currency)
    if amount != amount.quantize(Decimal(1).scaleb(-places)):
        return f"{currency} has {places} decimal places"
    return None


def normalize(amount: Decimal, currency: str) -> Decimal:
    """The amount written with exactly the currency's minor units ("3.5" -> "3.50")."""
    return amount.quantize(Decimal(1).scaleb(-minor_units(currency)))


def base_units(value: object) -> str:
    """A NUMERIC(78,0) amount as JSON text: plain digits. str() of a Decimal read from Postgres can
    come out in exponent form (3.28125E+15), which no client should have to parse."""
    if isinstance(value, Decimal):
        if value != value.to_integral_value():
            raise ValueError(f"{value} is not a whole number of base units")
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    raise TypeError(f"base units must be int or Decimal, not {type(value).__name__}")
