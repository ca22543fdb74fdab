"""`just schema`: write beanpay/schema.sql, the schema a fresh migration run produces (pg_dump of a
freshly migrated database, without the lines that differ between runs). tests/integration/test_schema.py
checks that the migrations still produce exactly this file."""

from __future__ import annotations

import asyncio
import glob
import subprocess
import sys
from pathlib import Path

from beanpay.config import load_settings
from beanpay.deploy.devstack.databases import create_database, drop_database

SCHEMA = Path(__file__).resolve().parents[1] / "beanpay" / "schema.sql"
HEADER = ("-- The schema a fresh `beanpay migrate` produces: written by `just schema`,\n"
          "-- checked by tests/integration/test_schema.py. Change the schema with a migration, never here.\n")


def pg_dump() -> str:
    return sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_dump"), reverse=True)[0]


def normalize(dump: str) -> str:
    """Drop comments, session settings and pg_dump's per-run restrict keys; squeeze blank lines."""
    kept: list[str] = []
    for line in dump.splitlines():
        if line.startswith(("--", "SET ", "SELECT pg_catalog.set_config", "\\restrict", "\\unrestrict")):
            continue
        if not line.strip() and (not kept or not kept[-1].strip()):
            continue
        kept.append(line.rstrip())
    return HEADER + "\n".join(kept).strip() + "\n"


def dump(dsn: str) -> str:
    out = subprocess.run([pg_dump(), "--schema-only", "--no-owner", "--no-privileges", "--dbname", dsn],
                         capture_output=True, text=True, check=True)
    return normalize(out.stdout)


async def fresh_schema() -> str:
    settings = load_settings()
    dsn = await create_database(settings.dsn, "beanpay_schema")
    try:
        return await asyncio.to_thread(dump, dsn)
    finally:
        await drop_database(settings.dsn, dsn)


def main() -> int:
    SCHEMA.write_text(asyncio.run(fresh_schema()))
    print(f"wrote {SCHEMA}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
