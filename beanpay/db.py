"""PostgreSQL access: one small connection protocol, its asyncpg implementation, typed rows.

Components speak to the database only through `Connection` with named statements (`beanpay.queries`);
`fetch_as` decodes rows into msgspec Structs once. Driver errors are translated here, in one
place: a unique or check violation becomes `Conflict` keyed by constraint name, a broken or refused
connection becomes `DatabaseUnavailable` (the API answers 503, workers back off and retry).
Crypto amounts (NUMERIC without a fraction) arrive as `int`, fiat amounts as `Decimal`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from decimal import Decimal
from typing import Any, Protocol, TypeVar

import asyncpg
import structlog

from beanpay.config import Settings
from beanpay.errors import Conflict, NotFound, Unavailable
from beanpay.queries import Query
from beanpay.wakeups import Wakeups

log = structlog.get_logger("db")

T = TypeVar("T")
Row = Mapping[str, Any]

# constraint name -> message for the client; anything unlisted gets a generic conflict message
CONSTRAINT_MESSAGES = {
    "shop_products_shop_product_uq": "this product is already on the shop's menu",
    "coffee_supplies_shop_product_uq": "the shop already has a supply record for this product",
    "order_claims_live_order_uq": "the order already has a claim",
    "order_claims_code_uq": "claim code collision",
}

# the database went away, or is not there yet: retry later (a connection lost mid-transaction may or
# may not have committed; every write is idempotent, or checked on retry, so retrying is safe)
TRANSIENT: tuple[type[BaseException], ...] = (
    OSError, TimeoutError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError, asyncpg.AdminShutdownError, asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
    # a connection left mid-operation by a failover ("cannot switch to state ...; another operation is in
    # progress"): the connection is unusable, so it is dropped and made again like a lost one
    asyncpg.InternalClientError,
)


class DatabaseUnavailable(Unavailable):
    """PostgreSQL cannot be reached, or dropped the connection."""


# what a background loop rides out and retries: the driver's own errors, and the same ones already mapped by
# `Pool`'s connections (an outage seen through them is DatabaseUnavailable)
RIDE_OUT: tuple[type[BaseException], ...] = (*TRANSIENT, DatabaseUnavailable, asyncpg.PostgresError)


class NeedsTransaction(Exception):
    """A statement sent on its own declined to commit (see migration 0010): nothing was written; do the
    work in a transaction."""


NEEDS_TRANSACTION = "BPT01"  # the SQLSTATE of needs_transaction()


def translate(exc: BaseException) -> Exception | None:
    """The domain error for a driver error, or None when it has none."""
    if isinstance(exc, asyncpg.UniqueViolationError):
        name = exc.constraint_name or ""
        return Conflict(CONSTRAINT_MESSAGES.get(name, "conflicts with an existing record"), constraint=name)
    if isinstance(exc, asyncpg.CheckViolationError):
        return Conflict(f"the change breaks rule {exc.constraint_name}", constraint=exc.constraint_name or "")
    if isinstance(exc, asyncpg.ForeignKeyViolationError):
        if "still referenced" in (exc.detail or ""):  # a delete of a row others point at
            return Conflict("other records still refer to this one", constraint=exc.constraint_name or "")
        return NotFound("a referenced record does not exist", constraint=exc.constraint_name or "")
    if isinstance(exc, asyncpg.PostgresError) and exc.sqlstate == NEEDS_TRANSACTION:
        return NeedsTransaction(str(exc))
    if isinstance(exc, TRANSIENT):
        return DatabaseUnavailable("the database is unavailable; retry shortly", reason=type(exc).__name__)
    return None


class Connection(Protocol):
    """What components need from a database connection. Statements are always named."""

    async def execute(self, query: Query, *args: Any) -> str: ...

    async def fetch(self, query: Query, *args: Any) -> Sequence[Row]: ...

    async def fetchrow(self, query: Query, *args: Any) -> Row | None: ...

    async def fetchval(self, query: Query, *args: Any) -> Any: ...

    def transaction(self) -> AbstractAsyncContextManager[None]:
        """A transaction, or a savepoint inside one."""

    def wake_after_commit(self, channel: str) -> None:
        """NOTIFY `channel` once this connection's work is committed (see beanpay.wakeups)."""


class Database(Protocol):
    """A source of connections (the pool)."""

    def acquire(self) -> AbstractAsyncContextManager[Connection]: ...

    def transaction(self) -> AbstractAsyncContextManager[Connection]: ...


async def fetch_as(conn: Connection, query: Query, kind: type[T], *args: Any) -> list[T]:
    """Rows as `kind` (a msgspec Struct whose fields are the statement's columns)."""
    return [kind(**r) for r in await conn.fetch(query, *args)]


async def fetchrow_as(conn: Connection, query: Query, kind: type[T], *args: Any) -> T | None:
    row = await conn.fetchrow(query, *args)
    return None if row is None else kind(**row)


async def fetch_one(conn: Connection, query: Query, kind: type[T], key: Any, *, what: str) -> T:
    """The row of `what` that `key` names, as `kind`; NotFound ("no such order", order_id=...) when none."""
    row = await fetchrow_as(conn, query, kind, key)
    if row is None:
        raise NotFound(f"no such {what}", **{f"{what}_id": str(key)})
    return row


class PgConnection:
    """`Connection` on an asyncpg connection."""

    __slots__ = ("raw", "wakes")

    def __init__(self, raw: asyncpg.Connection) -> None:
        self.raw = raw
        self.wakes: set[str] = set()

    def wake_after_commit(self, channel: str) -> None:
        self.wakes.add(channel)

    async def execute(self, query: Query, *args: Any) -> str:
        try:
            return str(await self.raw.execute(query.text, *args))
        except Exception as exc:
            if (mapped := translate(exc)) is None:
                raise
            raise mapped from exc

    async def fetch(self, query: Query, *args: Any) -> list[asyncpg.Record]:
        try:
            return list(await self.raw.fetch(query.text, *args))
        except Exception as exc:
            if (mapped := translate(exc)) is None:
                raise
            raise mapped from exc

    async def fetchrow(self, query: Query, *args: Any) -> asyncpg.Record | None:
        try:
            return await self.raw.fetchrow(query.text, *args)
        except Exception as exc:
            if (mapped := translate(exc)) is None:
                raise
            raise mapped from exc

    async def fetchval(self, query: Query, *args: Any) -> Any:
        try:
            return await self.raw.fetchval(query.text, *args)
        except Exception as exc:
            if (mapped := translate(exc)) is None:
                raise
            raise mapped from exc

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        try:
            async with self.raw.transaction():
                yield
        except Exception as exc:
            if (mapped := translate(exc)) is None:
                raise
            raise mapped from exc


class Pool:
    """`Database` on an asyncpg pool. It connects lazily, so a service starts while PostgreSQL is
    down and works once it is up; connections broken by a restart are replaced on the next use."""

    def __init__(self, raw: asyncpg.Pool) -> None:
        self.raw = raw
        self.wakeups = Wakeups(raw)

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[PgConnection]:
        conn: PgConnection | None = None
        try:
            async with self.raw.acquire() as raw:
                conn = PgConnection(raw)
                yield conn
        except Exception as exc:
            if (mapped := translate(exc)) is None:
                raise
            raise mapped from exc
        finally:  # also after a failure: a transaction may have committed before it, and a spare wake-up is harmless
            if conn is not None and conn.wakes:
                self.wakeups.send(conn.wakes)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PgConnection]:
        """One transaction on one pooled connection."""
        async with self.acquire() as conn, conn.transaction():
            yield conn

    async def fetch(self, query: Query, *args: Any) -> list[asyncpg.Record]:
        async with self.acquire() as conn:
            return await conn.fetch(query, *args)

    async def fetchrow(self, query: Query, *args: Any) -> asyncpg.Record | None:
        async with self.acquire() as conn:
            return await conn.fetchrow(query, *args)

    async def fetchval(self, query: Query, *args: Any) -> Any:
        async with self.acquire() as conn:
            return await conn.fetchval(query, *args)

    async def execute(self, query: Query, *args: Any) -> str:
        async with self.acquire() as conn:
            return await conn.execute(query, *args)

    async def warm(self, connections: int) -> None:
        """Open `connections` at once (a lazy pool would open them on the first burst of requests,
        each connect and first statement paid by a client); they stay while in use. Best effort."""
        async def one() -> None:
            async with self.raw.acquire() as raw:
                await raw.execute("SELECT 1")

        try:
            await asyncio.gather(*(one() for _ in range(min(connections, self.raw.get_max_size()))))
        except Exception as exc:  # the database is not there yet: connections open on demand later
            log.info("pool not warmed", error=repr(exc))

    async def ping(self, within: float = 2.0) -> bool:
        try:
            async with asyncio.timeout(within), self.raw.acquire() as raw:
                await raw.execute("SELECT 1")
            return True
        except Exception:  # any failure means not reachable now
            return False

    async def close(self, grace_seconds: float = 10.0) -> None:
        """Close gracefully, but never hang shutdown on a connection someone forgot to release."""
        await self.wakeups.drain()
        try:
            async with asyncio.timeout(grace_seconds):
                await self.raw.close()
        except TimeoutError:
            self.raw.terminate()


def _numeric_out(value: int | Decimal) -> str:
    return str(value)


def _numeric_in(text: str) -> int | Decimal:
    """Whole numbers (base units: NUMERIC(78,0)) as int, anything with a fraction (fiat, rates) as Decimal."""
    return int(text) if text.lstrip("-").isdigit() else Decimal(text)


async def init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("numeric", schema="pg_catalog", encoder=_numeric_out, decoder=_numeric_in,
                              format="text")


async def _no_session_state(conn: asyncpg.Connection) -> None:
    """Release hook: nothing to reset. Pooled connections never get session state (LISTEN and
    session advisory locks use dedicated connections), so asyncpg's default reset query, one round
    trip per release, is skipped. asyncpg still rolls back a transaction left open."""


async def create_pool(settings: Settings, *, max_size: int | None = None) -> Pool:
    raw = await asyncpg.create_pool(
        settings.dsn, min_size=0, max_size=max_size or settings.db_pool_max, command_timeout=30,
        server_settings={"application_name": "beanpay"}, reset=_no_session_state, init=init_connection,
    )
    assert raw is not None
    return Pool(raw)


async def connect(settings: Settings) -> asyncpg.Connection:
    """A dedicated connection (LISTEN, session advisory locks), with the pool's codecs."""
    raw = await asyncpg.connect(settings.dsn, server_settings={"application_name": "beanpay"})
    await init_connection(raw)
    return raw
