"""Migrations stay backwards compatible with the previous release, so a rolling deploy can run old and new
processes on one schema: from 0020 on (the first release deployed rolling) a migration only expands. It
adds tables, nullable columns, columns with defaults, indexes and constraints old code satisfies; what
removes or changes something old code reads or writes (DROP TABLE/COLUMN, RENAME, a column's TYPE, SET
NOT NULL, a NOT NULL column without a default) waits for the release after the code stopped using it, and
says so on a `-- contract:` line naming that release."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

MIGRATIONS = Path(__file__).resolve().parents[2] / "beanpay" / "migrations"
FIRST_ROLLING = 20
BREAKING = {
    "drops a table": re.compile(r"\bDROP\s+TABLE\b", re.I),
    "drops a column": re.compile(r"\bDROP\s+COLUMN\b", re.I),
    "renames": re.compile(r"\bRENAME\b", re.I),
    "changes a column's type": re.compile(r"\bALTER\s+COLUMN\s+\w+\s+(SET\s+DATA\s+)?TYPE\b", re.I),
    "makes a column NOT NULL": re.compile(r"\bSET\s+NOT\s+NULL\b", re.I),
    "adds a NOT NULL column without a default": re.compile(
        r"\bADD\s+COLUMN\s+(?:IF\s+NOT\s+EXISTS\s+)?\w+\s+[^,;]*\bNOT\s+NULL\b(?![^,;]*\bDEFAULT\b)", re.I),
}


def rolling() -> list[Path]:
    return [p for p in sorted(MIGRATIONS.glob("*.sql")) if int(p.name[:4]) >= FIRST_ROLLING]


def breaking(sql: str) -> list[str]:
    code = "\n".join(line.split("--", 1)[0] for line in sql.splitlines())
    return [what for what, pattern in BREAKING.items() if pattern.search(code)]


@pytest.mark.parametrize("path", rolling(), ids=lambda p: p.name)
def test_a_migration_only_expands_unless_it_says_why(path: Path) -> None:
    sql = path.read_text()
    found = breaking(sql)
    assert not found or "-- contract:" in sql, f"{path.name} {', '.join(found)}: the previous release breaks"


def test_the_check_catches_what_breaks_the_previous_release() -> None:
    assert breaking("ALTER TABLE t ADD COLUMN c text;") == []
    assert breaking("ALTER TABLE t ADD COLUMN c int NOT NULL DEFAULT 0;") == []
    assert breaking("ALTER TABLE t ADD COLUMN c int NOT NULL;") == ["adds a NOT NULL column without a default"]
    assert breaking("ALTER TABLE t DROP COLUMN c;") == ["drops a column"]
    assert breaking("ALTER TABLE t RENAME COLUMN a TO b;") == ["renames"]
    assert breaking("ALTER TABLE t ALTER COLUMN a TYPE bigint;") == ["changes a column's type"]
    assert breaking("ALTER TABLE t ALTER COLUMN a SET NOT NULL;") == ["makes a column NOT NULL"]
    assert breaking("-- DROP TABLE t (a comment)\nSELECT 1;") == []
