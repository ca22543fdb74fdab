from decimal import Decimal

import pytest

from beanpay.api.body import convert
from beanpay.api.rows import decode_cursor, encode_cursor
from beanpay.api.schemas import ProductCreate, ShopCreate
from beanpay.errors import InvalidInput


def test_all_bad_fields_are_reported_with_paths() -> None:
    with pytest.raises(InvalidInput) as err:
        convert({"name": "", "address": 5, "latitude": 91, "longitude": 0, "color": "red"}, ShopCreate, strict=True)
    fields = {e["field"]: e["message"] for e in err.value.errors}
    assert set(fields) == {"$.name", "$.address", "$.latitude", "$.color"}
    assert fields["$.color"] == "unknown field"


def test_nested_paths_and_missing_required() -> None:
    with pytest.raises(InvalidInput) as err:
        convert({"name": "Latte", "customizations": [{"name": "size", "options": [{"name": 3}]}]},
                ProductCreate, strict=True)
    fields = {e["field"] for e in err.value.errors}
    assert fields == {"$.category", "$.base_price", "$.customizations[0].options[0].name"}


def test_cross_field_rule_is_reported() -> None:
    with pytest.raises(InvalidInput) as err:
        convert({"name": "x", "address": "y", "latitude": 1.0}, ShopCreate, strict=True)
    assert "latitude and longitude" in err.value.errors[0]["message"]


def test_prices_decode_exactly() -> None:
    p = convert({"name": "Latte", "category": "coffee", "base_price": "4.10"}, ProductCreate, strict=True)
    assert p.base_price == Decimal("4.10")


def test_cursor_round_trip_and_tamper() -> None:
    assert decode_cursor(encode_cursor("2026-01-01T00:00:00+00:00", 7), str, int) == ("2026-01-01T00:00:00+00:00", 7)
    with pytest.raises(InvalidInput):
        decode_cursor("!!!not-base64", str, int)
    with pytest.raises(InvalidInput):
        decode_cursor(encode_cursor(1, 2), str, int)
