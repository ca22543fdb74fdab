from decimal import Decimal

import pytest

from beanpay.money import check_fiat, normalize


@pytest.mark.parametrize(("amount", "currency", "ok"), [
    ("3.50", "USD", True), ("3.5", "USD", True), ("3", "USD", True), ("3.505", "USD", False),
    ("-1", "USD", False), ("500", "JPY", True), ("500.5", "JPY", False), ("NaN", "USD", False),
    ("Infinity", "USD", False), ("1e400", "USD", False), ("9999999999.99", "USD", False),
])
def test_check_fiat(amount: str, currency: str, ok: bool) -> None:
    assert (check_fiat(Decimal(amount), currency) is None) is ok


def test_normalize_keeps_value_and_sets_places() -> None:
    assert str(normalize(Decimal("3.5"), "USD")) == "3.50"
    assert str(normalize(Decimal("500"), "JPY")) == "500"


def test_unknown_currency_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported currency"):
        check_fiat(Decimal(1), "XXX")
