"""Named SQL: each component keeps its statements in `sql/<name>.sql`, one block per statement.

    -- name: lock_order
    -- The order row, locked for a transition (FOR UPDATE).
    SELECT ... FROM coffee_orders WHERE id = $1 FOR UPDATE;

Every block starts with `-- name:` and a comment saying what it does and what it locks. Files are
read once, at import. A `Query` carries its name with its text, so an in-memory connection can answer
by name in unit tests, and a connection takes nothing else: no SQL is written inline.

A statement takes positional parameters (`$1`) or named ones (`:order_id`), never both. Named ones are
rewritten to positions once, at load, and bound by name (`query.bind(order_id=..., ...)`, or from a Struct's
fields): a statement of many parameters is read and called by what each is, not by its place.

A piece two statements of a component must share word for word (the stock hold an order takes, whichever
path writes it) is written once as a part and placed where a statement says `/* part: hold_stock */`:

    -- part: hold_stock
    -- Locks the shop's supply rows ... (a part is no statement of its own, and takes named parameters)
    wanted AS (...), old AS (...), held AS (...)

Parts are the component's: any of its files may place any part one of them defines.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

_HEADER = re.compile(r"^-- (name|part): ([a-z][a-z0-9_]*)\s*$", re.MULTILINE)
_PLACED = re.compile(r"/\* part: ([a-z][a-z0-9_]*) \*/")
_ANY_PART = re.compile(r"/\*\s*part\b", re.IGNORECASE)  # what is left after placing is a misspelt marker


class SqlFileError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Query:
    name: str
    text: str
    doc: str
    params: tuple[str, ...] = ()  # a named statement's parameters, in the order of their positions

    def bind(self, values: Any = None, /, **named: Any) -> list[Any]:
        """The positional arguments of a named statement: each parameter from `named`, else from `values` (a
        Struct's or object's attribute, or a mapping's key). A parameter nobody gives, or a name the statement
        does not take, is an error (a typo never binds NULL)."""
        unknown = set(named) - set(self.params)
        if unknown:
            raise TypeError(f"{self.name} takes no parameter {', '.join(sorted(unknown))}")
        args = []
        for param in self.params:
            if param in named:
                args.append(named[param])
            elif isinstance(values, Mapping) and param in values:
                args.append(values[param])
            elif values is not None and not isinstance(values, Mapping) and hasattr(values, param):
                args.append(getattr(values, param))
            else:
                raise TypeError(f"{self.name} needs its parameter {param!r}")
        return args


# what a named parameter is not: a string literal, a quoted name, a comment, a cast (`::int`)
_SKIP = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|::")
_NAMED = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")
_POSITIONAL = re.compile(r"\$\d+")


def named_to_positional(statement: str, source: str) -> tuple[str, tuple[str, ...]]:
    """Rewrite `:name` parameters to `$n` (the same name, the same position); the statement and its names."""
    params: list[str] = []
    out, at = [], 0
    for skip in [*_SKIP.finditer(statement), None]:
        end = skip.start() if skip else len(statement)
        code = statement[at:end]

        def position(m: re.Match[str]) -> str:
            if m.group(1) not in params:
                params.append(m.group(1))
            return f"${params.index(m.group(1)) + 1}"

        out.append(_NAMED.sub(position, code))
        if skip:
            out.append(skip.group(0))
            at = skip.end()
    if params and _POSITIONAL.search(_SKIP.sub(" ", statement)):
        raise SqlFileError(f"{source}: a statement takes $n or :name parameters, not both")
    return "".join(out), tuple(params)


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


def _blocks(text: str, source: str) -> Iterator[tuple[str, str, list[str], str]]:
    """(kind, name, comment lines, text) of each `-- name:` or `-- part:` block."""
    starts = list(_HEADER.finditer(text))
    if not starts or text[:starts[0].start()].strip():
        raise SqlFileError(f"{source}: every statement must start with a '-- name: ...' line")
    for m, nxt in zip(starts, [*starts[1:], None], strict=True):
        kind, name = m.group(1), m.group(2)
        body = text[m.end():nxt.start() if nxt else len(text)].strip()
        lines = body.splitlines()
        doc_lines = []
        while lines and lines[0].startswith("--"):
            doc_lines.append(lines.pop(0).removeprefix("--").strip())
        if not doc_lines:
            raise SqlFileError(f"{source}: {name} has no comment saying what it does")
        yield kind, name, doc_lines, "\n".join(lines).strip().removesuffix(";").strip()


def parts_of(text: str, source: str = "<sql>") -> dict[str, str]:
    """The parts a file defines, by name."""
    parts: dict[str, str] = {}
    for kind, name, _, body in _blocks(text, source):
        if kind == "part":
            if name in parts:
                raise SqlFileError(f"{source}: part {name} is defined twice")
            if _ANY_PART.search(_SKIP.sub(" ", body)):
                raise SqlFileError(f"{source}: part {name} places a part (parts do not nest)")
            parts[name] = body
    return parts


def _placed(statement: str, parts: Mapping[str, str], where: str) -> str:
    """The statement with each marker in its code (not in a string or a `--` comment) replaced by its part."""
    def part(m: re.Match[str]) -> str:
        if m.group(1) not in parts:
            raise SqlFileError(f"{where}: no part named {m.group(1)!r}")
        return parts[m.group(1)]

    out, at = [], 0
    for skip in [*_SKIP.finditer(statement), None]:
        code = statement[at:skip.start() if skip else len(statement)]
        placed = _PLACED.sub(part, code)
        if _ANY_PART.search(_PLACED.sub(" ", code)):
            raise SqlFileError(f"{where}: a part marker is written `/* part: name */` (one space each side)")
        out.append(placed)
        if skip:
            out.append(skip.group(0))
            at = skip.end()
    return "".join(out)


def parse(text: str, source: str = "<sql>", parts: Mapping[str, str] | None = None) -> Queries:
    """The statements of a file, with the parts they place (from `parts`, the component's, else the file's)."""
    parts = parts if parts is not None else parts_of(text, source)
    queries: dict[str, Query] = {}
    for kind, name, doc_lines, statement in _blocks(text, source):
        if kind == "part":
            continue
        if not statement:
            raise SqlFileError(f"{source}: {name} has no statement")
        if name in queries:
            raise SqlFileError(f"{source}: {name} is defined twice")
        statement, params = named_to_positional(_placed(statement, parts, f"{source}: {name}"),
                                                f"{source}: {name}")
        queries[name] = Query(name, statement, " ".join(doc_lines), params)
    return Queries(source, queries)


def load(package: str, filename: str) -> Queries:
    """The statements of `<package>/sql/<filename>` (package data), with the parts of the package's files."""
    folder = files(package) / "sql"
    parts: dict[str, str] = {}
    for f in sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name):
        for name, body in parts_of(f.read_text(), f"{package}/sql/{f.name}").items():
            if name in parts:
                raise SqlFileError(f"{package}/sql/{f.name}: part {name} is defined twice")
            parts[name] = body
    return parse((folder / filename).read_text(), f"{package}/sql/{filename}", parts)
