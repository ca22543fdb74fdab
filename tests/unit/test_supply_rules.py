import datetime as dt
import uuid

import pytest

from beanpay.api.schemas import Supply
from beanpay.api.supplies import crossed_reorder_level, stock_status


def supply(quantity: int, reorder: int = 10, status: str | None = None) -> Supply:
    now = dt.datetime.now(dt.UTC)
    return Supply(id=uuid.uuid4(), shop_id=uuid.uuid4(), product_id=uuid.uuid4(), quantity=quantity, unit="cups",
                  reorder_level=reorder, reserved=0, status=status or stock_status(quantity, reorder, False),
                  last_restocked=None, version=1, created_at=now, updated_at=now)


@pytest.mark.parametrize(("qty", "reorder", "disc", "expected"), [
    (0, 10, False, "out_of_stock"), (10, 10, False, "low_stock"), (11, 10, False, "in_stock"),
    (50, 10, True, "discontinued"),
])
def test_stock_status(qty: int, reorder: int, disc: bool, expected: str) -> None:
    assert stock_status(qty, reorder, disc) == expected


def test_alert_fires_only_when_crossing_down() -> None:
    assert crossed_reorder_level(supply(11), supply(10))
    assert not crossed_reorder_level(supply(10), supply(9))  # already low: no repeat alert
    assert not crossed_reorder_level(supply(12), supply(11))
    assert crossed_reorder_level(None, supply(3))  # created below the level
    assert not crossed_reorder_level(supply(20), supply(5, status="discontinued"))
