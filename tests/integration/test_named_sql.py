"""Every named statement of every component prepares against a freshly migrated schema: a typo, a
column that moved or an ambiguous parameter fails here, not on the first request that runs it.
And every statement is used somewhere (no dead SQL)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from beanpay.queries import Queries, load

ROOT = Path(__file__).resolve().parents[2]
MAPPING: dict[str, str] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]


def every_file() -> list[Queries]:
    found = []
    for package, folder in MAPPING.items():
        for path in sorted((ROOT / folder / "sql").glob("*.sql")):
            found.append(load(package, path.name))
    return found


FILES = every_file()


@pytest.mark.parametrize("queries", FILES, ids=lambda q: q.source)
async def test_every_statement_prepares(db, queries: Queries) -> None:
    async with db.raw.acquire() as conn:
        for query in queries:
            try:
                await conn.prepare(query.text)
            except Exception as exc:
                pytest.fail(f"{queries.source} {query.name}: {exc!r}")


def test_every_statement_is_used() -> None:
    code = "\n".join(p.read_text() for folder in MAPPING.values() for p in (ROOT / folder).rglob("*.py"))
    unused = [f"{q.source}: {query.name}" for q in FILES for query in q
              if not re.search(rf"\.{query.name}\b", code)]
    assert not unused, unused


# Statements that write events; their callers ask for the relay's wake-up after commit
# (Connection.wake_after_commit). A new one must too, or its events wait for the relay's poll.
OUTBOX_WRITERS = {("beanpay/sql/outbox.sql", "insert_events"), ("beanpay.engine/sql/orders.sql", "write_order"),
                  ("beanpay/sql/relay.sql", "replay_journal")}


def test_every_statement_writing_events_is_known_to_wake_the_relay() -> None:
    writers = {(queries.source, query.name) for queries in FILES for query in queries
               if re.search(r"INSERT\s+INTO\s+event_outbox", query.text, re.IGNORECASE)}
    assert writers == OUTBOX_WRITERS
