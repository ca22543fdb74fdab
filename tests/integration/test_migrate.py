import asyncio
import uuid

import asyncpg
import pytest

from beanpay.deploy.devstack.databases import drop_database
from beanpay.migrate import MigrationError, discover, migrate


async def test_concurrent_migrations_apply_each_once(stack) -> None:
    name = f"beanpay_migrate_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(stack.dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    dsn = stack.dsn.rsplit("/", 1)[0] + "/" + name
    try:
        results = await asyncio.gather(*(migrate(dsn) for _ in range(4)))
        applied = [names for names in results if names]
        assert len(applied) == 1, f"exactly one run applies the migrations, got {results}"
        assert applied[0] == [m.name for m in discover()]
        conn = await asyncpg.connect(dsn)
        rows = await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
        assert [r["version"] for r in rows] == [m.version for m in discover()]
        tables = {r["tablename"] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")}
        assert {"coffee_shops", "products", "shop_products", "coffee_supplies", "coffee_orders", "order_items",
                "crypto_payments", "order_claims", "users", "shop_grants", "audit_log", "event_outbox",
                "idempotency_keys"} <= tables
        amount_type = await conn.fetchval(
            """SELECT format_type(atttypid, atttypmod) FROM pg_attribute
               WHERE attrelid = 'crypto_payments'::regclass AND attname = 'crypto_amount'""")
        assert amount_type == "numeric(78,0)"
        await conn.close()
        assert await migrate(dsn) == []
    finally:
        await drop_database(stack.dsn, dsn)  # retried: an autovacuum worker may be in the new database


async def test_a_no_transaction_migration_builds_an_index_concurrently_and_is_guarded_by_its_checksum(
        stack, tmp_path) -> None:
    directory = tmp_path / "migrations"
    directory.mkdir()
    for mig in discover():
        (directory / f"{mig.name}.sql").write_text(mig.sql)
    nxt = len(discover()) + 1
    extra = directory / f"{nxt:04d}_orders_by_pickup.sql"
    # CREATE INDEX CONCURRENTLY refuses to run inside a transaction block: this passes only outside one
    extra.write_text("-- beanpay: no-transaction\n"
                     "CREATE INDEX CONCURRENTLY IF NOT EXISTS coffee_orders_pickup_idx\n"
                     "    ON coffee_orders (pickup_time);\n"
                     "-- a second statement, so the file is really split\n"
                     "CREATE INDEX CONCURRENTLY IF NOT EXISTS coffee_orders_user_idx2 ON coffee_orders (user_id);\n")
    name = f"beanpay_migrate_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(stack.dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    dsn = stack.dsn.rsplit("/", 1)[0] + "/" + name
    try:
        applied = await migrate(dsn, directory)
        assert applied[-1] == extra.stem
        conn = await asyncpg.connect(dsn)
        try:
            valid = await conn.fetch(
                """SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                   WHERE c.relname IN ('coffee_orders_pickup_idx', 'coffee_orders_user_idx2')""")
            assert sorted((r["relname"], r["indisvalid"]) for r in valid) == [
                ("coffee_orders_pickup_idx", True), ("coffee_orders_user_idx2", True)]
            assert await conn.fetchval("SELECT max(version) FROM schema_migrations") == nxt
        finally:
            await conn.close()
        assert await migrate(dsn, directory) == []
        extra.write_text(extra.read_text() + "-- edited after it was applied\n")
        with pytest.raises(MigrationError, match="was changed after it was applied"):
            await migrate(dsn, directory)
        (directory / f"{nxt + 2:04d}_gap.sql").write_text("SELECT 1;\n")
        with pytest.raises(MigrationError, match="without gaps"):
            await migrate(dsn, directory)
    finally:
        await drop_database(stack.dsn, dsn)  # retried: an autovacuum worker may be in the new database
