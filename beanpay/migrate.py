"""Numbered, forward-only SQL migrations, applied in order under an advisory lock.

Each file `NNNN_name.sql` in beanpay/migrations runs in its own transaction together with its row in
`schema_migrations`, so a failed migration leaves nothing behind. A file whose first line is
`-- beanpay: no-transaction` runs statement by statement outside a transaction instead (what
`CREATE INDEX CONCURRENTLY` needs); such a file should hold statements that can be re-run
(`IF NOT EXISTS`), since a failure half way leaves the earlier ones applied. A checksum guards
against a file being edited after it was applied. `schema.sql` is what a fresh run produces.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import asyncpg

from beanpay import queries
from beanpay.db import PgConnection

MIGRATIONS_DIR = Path(str(files("beanpay") / "migrations"))
SQL = queries.load("beanpay", "migrate.sql")
_LOCK_KEY = 0x6265616E  # "bean"
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
NO_TRANSACTION = "-- beanpay: no-transaction"


class MigrationError(Exception):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def transactional(self) -> bool:
        return not self.sql.startswith(NO_TRANSACTION)

    def statements(self) -> list[str]:
        """The file split at semicolons that end a line (no-transaction files hold no functions)."""
        return [s.strip() for s in re.split(r";\s*$", self.sql, flags=re.MULTILINE) if _code(s)]


def _code(text: str) -> bool:
    return any(line.strip() and not line.strip().startswith("--") for line in text.splitlines())


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found = []
    for path in sorted(directory.glob("*.sql")):
        m = _NAME.match(path.name)
        if m is None:
            raise MigrationError(f"bad migration file name {path.name!r}: want NNNN_name.sql")
        found.append(Migration(int(m.group(1)), path.stem, path.read_text()))
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise MigrationError(f"migration numbers must run 1..n without gaps, found {versions}")
    return found


async def migrate(dsn: str, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply pending migrations; return the names applied by this call."""
    migrations = discover(directory)
    raw = await asyncpg.connect(dsn)
    conn = PgConnection(raw)
    try:
        await conn.execute(SQL.lock, _LOCK_KEY)
        try:
            await conn.execute(SQL.create_ledger)
            done = {r["version"]: r for r in await conn.fetch(SQL.applied)}
            applied = []
            for mig in migrations:
                if mig.version in done:
                    if done[mig.version]["checksum"] != mig.checksum:
                        raise MigrationError(f"{mig.name} was changed after it was applied; add a new migration")
                    continue
                if mig.transactional:
                    async with raw.transaction():
                        await raw.execute(mig.sql)
                        await conn.execute(SQL.record, mig.version, mig.name, mig.checksum)
                else:
                    for statement in mig.statements():
                        await raw.execute(statement)
                    await conn.execute(SQL.record, mig.version, mig.name, mig.checksum)
                applied.append(mig.name)
            return applied
        finally:
            await conn.execute(SQL.unlock, _LOCK_KEY)
    finally:
        await raw.close()
