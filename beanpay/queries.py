"""Named SQL: each component keeps its statements in `sql/<name>.sql`, one block per statement.

    -- name: lock_order
    -- The order row, locked for a transition (FOR UPDATE).
    SELECT ... FROM coffee_orders WHERE id = $1 FOR UPDATE;

Every block starts with `-- name:` and a comment saying what it does and what it locks. Files are
read once, at import. A `Query` carries its name with its text, so an in-memory connection can answer
by name in unit tests, and a connection takes nothing else: no SQL is written inline.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.resources import files

_HEADER = re.compile(r"^-- name: ([a-z][a-z0-9_]*)\s*$", re.MULTILINE)


class SqlFileError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Query:
    name: str
    text: str
    doc: str


class Queries:
    """The named statements of one file, as attributes: `ORDERS.lock_order`."""

    def __init__(self, source: str, queries: dict[str, Query]) -> None:
        self._source = source
        self._queries = queries

    def __getattr__(self, name: str) -> Query:
        try:
            return self._queries[name]
        except KeyError:
            raise AttributeError(f"{self._source} has no statement named {name!r}") from None

    def __iter__(self) -> Iterator[Query]:
        return iter(self._queries.values())

    @property
    def source(self) -> str:
        return self._source


def parse(text: str, source: str = "<sql>") -> Queries:
    starts = list(_HEADER.finditer(text))
    if not starts or text[:starts[0].start()].strip():
        raise SqlFileError(f"{source}: every statement must start with a '-- name: ...' line")
    queries: dict[str, Query] = {}
    for m, nxt in zip(starts, [*starts[1:], None], strict=True):
        name = m.group(1)
        body = text[m.end():nxt.start() if nxt else len(text)].strip()
        lines = body.splitlines()
        doc_lines = []
        while lines and lines[0].startswith("--"):
            doc_lines.append(lines.pop(0).removeprefix("--").strip())
        statement = "\n".join(lines).strip().removesuffix(";").strip()
        if not doc_lines:
            raise SqlFileError(f"{source}: {name} has no comment saying what it does")
        if not statement:
            raise SqlFileError(f"{source}: {name} has no statement")
        if name in queries:
            raise SqlFileError(f"{source}: {name} is defined twice")
        queries[name] = Query(name, statement, " ".join(doc_lines))
    return Queries(source, queries)


def load(package: str, filename: str) -> Queries:
    """The statements of `<package>/sql/<filename>` (package data)."""
    return parse((files(package) / "sql" / filename).read_text(), f"{package}/sql/{filename}")
