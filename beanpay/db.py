"""PostgreSQL access: the pool, transactions, and driver errors turned into domain errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypeAlias

import asyncpg

from beanpay.config import Settings
from beanpay.errors import Conflict, NotFound

Connection: TypeAlias = asyncpg.Connection
Pool: TypeAlias = asyncpg.Pool

# constraint name -> message for the client; anything unlisted gets a generic conflict message
CONSTRAINT_MESSAGES = {
    "shop_products_shop_product_uq": "this product is already on the shop's menu",
    "coffee_supplies_shop_product_uq": "the shop already has a supply record for this product",
    "order_claims_live_order_uq": "the order already has a claim",
    "order_claims_code_uq": "claim code collision",
    "idempotency_keys_pkey": "this Idempotency-Key is in use",
}


async def _no_session_state(conn: asyncpg.Connection) -> None:
    """Release hook: nothing to reset. Pooled connections never get session state (LISTEN and
    session advisory locks use dedicated connections), so asyncpg's default reset query, one round
    trip per release, is skipped. asyncpg still rolls back a transaction left open."""


async def create_pool(settings: Settings) -> Pool:
    pool = await asyncpg.create_pool(
        settings.dsn, min_size=settings.db_pool_min, max_size=settings.db_pool_max,
        command_timeout=30, server_settings={"application_name": "beanpay"}, reset=_no_session_state,
    )
    assert pool is not None
    return pool


async def close_pool(pool: Pool, grace_seconds: float = 10.0) -> None:
    """Close gracefully, but never hang shutdown on a connection someone forgot to release."""
    try:
        await asyncio.wait_for(pool.close(), grace_seconds)
    except TimeoutError:
        pool.terminate()


@asynccontextmanager
async def transaction(pool: Pool) -> AsyncIterator[Connection]:
    """One transaction on one pooled connection; constraint violations become domain errors."""
    try:
        async with pool.acquire() as conn, conn.transaction():
            yield conn
    except asyncpg.UniqueViolationError as exc:
        name = exc.constraint_name or ""
        raise Conflict(CONSTRAINT_MESSAGES.get(name, "conflicts with an existing record"), constraint=name) from exc
    except asyncpg.CheckViolationError as exc:
        raise Conflict(f"the change breaks rule {exc.constraint_name}", constraint=exc.constraint_name or "") from exc
    except asyncpg.ForeignKeyViolationError as exc:
        raise NotFound("a referenced record does not exist", constraint=exc.constraint_name or "") from exc
