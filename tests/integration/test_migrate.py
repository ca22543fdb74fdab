import asyncio
import uuid

import asyncpg

from beanpay.migrate import discover, migrate


async def test_concurrent_migrations_apply_each_once(stack) -> None:
    name = f"beanpay_migrate_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(stack.dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
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
                "crypto_payments", "order_claims", "users", "user_roles", "audit_log", "event_outbox",
                "idempotency_keys"} <= tables
        amount_type = await conn.fetchval(
            """SELECT format_type(atttypid, atttypmod) FROM pg_attribute
               WHERE attrelid = 'crypto_payments'::regclass AND attname = 'crypto_amount'""")
        assert amount_type == "numeric(78,0)"
        await conn.close()
        assert await migrate(dsn) == []
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
