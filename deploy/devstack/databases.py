"""Throw-away databases for tests and benchmarks: created migrated, dropped reliably."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from beanpay.migrate import migrate


async def create_database(admin_dsn: str, prefix: str) -> str:
    """A new, migrated database; returns its DSN."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    dsn = admin_dsn.rsplit("/", 1)[0] + "/" + name
    await migrate(dsn)
    return dsn


async def drop_database(admin_dsn: str, dsn: str) -> None:
    """Drop it, retrying: an autovacuum worker (a superuser session we may not terminate) can hold it."""
    name = dsn.rsplit("/", 1)[1]
    admin = await asyncpg.connect(admin_dsn)
    try:
        for attempt in range(20):
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                return
            except (asyncpg.InsufficientPrivilegeError, asyncpg.ObjectInUseError):
                if attempt == 19:
                    raise
                await asyncio.sleep(0.5)
    finally:
        await admin.close()
