"""Named SQL: statements by name, and named parameters rewritten to positions once and bound by name."""

from __future__ import annotations

import msgspec
import pytest

from beanpay.queries import SqlFileError, parse

SQL = parse("""-- name: order
-- An order's line, its amount cast, a string and a comment that look like parameters and are not.
SELECT :order_id::uuid, ':not_one', "a:b", x::text, :amount  -- :nor_this
FROM t WHERE id = :order_id

-- name: plain
-- Positional, as most statements are.
SELECT $1, $2::int
""")


class Line(msgspec.Struct):
    order_id: str
    amount: int
    extra: str = "ignored"


def test_named_parameters_become_positions_in_first_appearance_order() -> None:
    assert SQL.order.text.splitlines()[0] == "SELECT $1::uuid, ':not_one', \"a:b\", x::text, $2  -- :nor_this"
    assert SQL.order.text.endswith("WHERE id = $1")
    assert SQL.order.params == ("order_id", "amount")
    assert SQL.plain.params == () and SQL.plain.text == "SELECT $1, $2::int"


def test_they_bind_by_name_from_keywords_a_struct_or_a_mapping() -> None:
    assert SQL.order.bind(amount=5, order_id="o") == ["o", 5]
    assert SQL.order.bind(Line("o", 5)) == ["o", 5]
    assert SQL.order.bind({"order_id": "o", "amount": 5}, amount=6) == ["o", 6]


def test_a_missing_or_unknown_name_is_an_error_never_a_null() -> None:
    with pytest.raises(TypeError, match="'amount'"):
        SQL.order.bind(order_id="o")
    with pytest.raises(TypeError, match="amout"):
        SQL.order.bind(order_id="o", amount=1, amout=2)


def test_a_statement_takes_one_kind_of_parameter() -> None:
    with pytest.raises(SqlFileError, match="not both"):
        parse("-- name: mixed\n-- Both kinds.\nSELECT $1, :a")


PARTS = """-- part: held
-- The rows a statement holds, shared word for word.
held AS (SELECT id FROM t WHERE shop = :shop_id FOR UPDATE)

-- name: hold
-- Places the part, then binds what the part and the statement name, in first-appearance order.
WITH /* part: held */ SELECT :order_id, id FROM held
"""


def test_a_part_is_placed_where_a_statement_names_it_and_is_no_statement_itself() -> None:
    sql = parse(PARTS)
    assert sql.hold.text == "WITH held AS (SELECT id FROM t WHERE shop = $1 FOR UPDATE) SELECT $2, id FROM held"
    assert sql.hold.params == ("shop_id", "order_id")
    assert [q.name for q in sql] == ["hold"]


def test_a_part_nobody_defined_is_an_error_at_load() -> None:
    with pytest.raises(SqlFileError, match="no part named 'gone'"):
        parse("-- name: hold\n-- Names a part that is not there.\nWITH /* part: gone */ SELECT 1")


def test_a_marker_in_a_string_or_comment_stays_text_and_a_misspelt_one_is_refused() -> None:
    sql = parse(PARTS.replace("SELECT :order_id, id FROM held",
                              "SELECT '/* part: held */', id FROM held -- /* part: held */"))
    assert sql.hold.text.endswith("SELECT '/* part: held */', id FROM held -- /* part: held */")
    with pytest.raises(SqlFileError, match="one space each side"):
        parse(PARTS.replace("WITH /* part: held */", "WITH /*part: held*/"))
    with pytest.raises(SqlFileError, match="defined twice"):
        parse(PARTS + "\n-- part: held\n-- Again.\nheld AS (SELECT 1)\n")
