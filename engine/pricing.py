"""Order prices from a shop's menu price and a product's customization options. Pure, Decimal only."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from beanpay.money import normalize


@dataclass(frozen=True, slots=True)
class Option:
    name: str
    price_delta: Decimal


@dataclass(frozen=True, slots=True)
class Group:
    name: str
    options: tuple[Option, ...]
    required: bool = False
    multiple: bool = False


@dataclass(frozen=True, slots=True)
class PricedLine:
    unit_price: Decimal  # menu price plus the chosen options' deltas
    quantity: int
    total: Decimal


class PricingError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


def price_line(menu_price: Decimal, groups: Sequence[Group], chosen: Mapping[str, Sequence[str]], quantity: int,
               currency: str, *, field: str = "$") -> PricedLine:
    """Price one order line; every choice is checked against the product's groups."""
    if quantity < 1:
        raise PricingError(f"{field}.quantity", "must be at least 1")
    by_name = {g.name: g for g in groups}
    for name in chosen:
        if name not in by_name:
            raise PricingError(f"{field}.customizations.{name}", "no such customization on this product")
    unit = menu_price
    for group in groups:
        picks = list(chosen.get(group.name, ()))
        where = f"{field}.customizations.{group.name}"
        if group.required and not picks:
            raise PricingError(where, "a choice is required")
        if len(picks) > 1 and not group.multiple:
            raise PricingError(where, "choose one option")
        if len(set(picks)) != len(picks):
            raise PricingError(where, "an option is chosen twice")
        options = {o.name: o for o in group.options}
        for pick in picks:
            if pick not in options:
                raise PricingError(where, f"no option {pick!r}")
            unit += options[pick].price_delta
    if unit < 0:
        raise PricingError(field, "options bring the price below zero")
    unit = normalize(unit, currency)
    return PricedLine(unit, quantity, normalize(unit * quantity, currency))


def order_total(lines: Sequence[PricedLine], currency: str) -> Decimal:
    return normalize(sum((line.total for line in lines), Decimal(0)), currency)
