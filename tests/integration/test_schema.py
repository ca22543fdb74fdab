"""The migrations, applied from scratch, produce exactly beanpay/schema.sql (regenerate: `just schema`)."""

from __future__ import annotations

import difflib

from tests.schema_dump import SCHEMA, fresh_schema


async def test_migrations_produce_schema_sql(stack) -> None:
    produced = await fresh_schema()
    committed = SCHEMA.read_text()
    diff = "".join(difflib.unified_diff(committed.splitlines(True), produced.splitlines(True),
                                        "beanpay/schema.sql", "fresh migrations", n=2))
    assert produced == committed, f"the migrations and schema.sql disagree (run `just schema`):\n{diff}"
