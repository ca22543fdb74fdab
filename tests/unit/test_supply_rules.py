"""The low-stock alert rule (the status itself is the schema's: tests/integration/test_supplies_api.py)."""

import pytest

from beanpay.engine.inventory import low_stock_alert


@pytest.mark.parametrize(("before", "after", "fires"), [
    ("in_stock", "low_stock", True),
    ("in_stock", "out_of_stock", True),
    (None, "low_stock", True),  # created at or below the reorder level
    ("low_stock", "low_stock", False),  # already low: no repeat alert
    ("low_stock", "out_of_stock", False),
    ("in_stock", "in_stock", False),
    ("in_stock", "discontinued", False),
    ("out_of_stock", "in_stock", False),
])
def test_the_alert_fires_once_when_stock_leaves_in_stock(before: str | None, after: str, fires: bool) -> None:
    assert low_stock_alert(before, after) is fires
