"""Shared fixtures. Integration tests run against the real local stack (`beanpay dev up`).

Each test session migrates a fresh database of its own (dropped at the end), so runs never see
each other's rows; tests make their own shops and products, so they do not depend on order.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import pytest

from beanpay.config import Settings, load_settings
from beanpay.db import Pool, init_connection
from beanpay.deploy.devstack.databases import create_database, drop_database
from beanpay.queries import Query
from beanpay.tokens import Claims, issue
from tests import secrets_watch

TESTS = Path(__file__).parent
TIERS = ("unit", "integration", "adversarial", "drills")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each test is marked with its tier, the folder it is in (`-m unit` needs no service). Tests marked `late`
    run after the others: each keeps both cores busy for a minute or more, and `just test-lanes` runs the drills
    beside the other tiers, which are over by then (run together, each slowed the other by half)."""
    for item in items:
        tier = item.path.relative_to(TESTS).parts[0]
        if tier in TIERS:
            item.add_marker(getattr(pytest.mark, tier))
    items.sort(key=lambda item: item.get_closest_marker("late") is not None)  # stable: the rest keep their order


@pytest.fixture(scope="session", autouse=True)
def secrets_never_logged() -> Iterator[None]:
    """Keeps every log line of the run (structlog and the standard library, every level), and fails the
    run if any secret the tests noted (tests.secrets_watch.watch) appears in one."""
    import logging

    import structlog

    config = structlog.get_config()
    structlog.configure(processors=[secrets_watch.capture, *config["processors"]])
    handler = secrets_watch.Keep(level=logging.INFO)
    root = logging.getLogger()
    root.addHandler(handler)
    previous = root.level
    root.setLevel(min(previous or logging.INFO, logging.INFO))
    yield
    root.removeHandler(handler)
    root.setLevel(previous)
    leaked = secrets_watch.leaks()
    assert not leaked, f"secrets written to the logs: {leaked}"


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    return load_settings()


@pytest.fixture(scope="session")
def stack(base_settings: Settings) -> Settings:
    """The local stack, started if it is not running (a no-op when it is)."""
    from beanpay.deploy.devstack import stack as devstack

    devstack.up(base_settings, ["postgres", "redis", "kafka"])
    return base_settings


@pytest.fixture(scope="session")
async def settings(stack: Settings) -> AsyncIterator[Settings]:
    dsn = await create_database(stack.dsn, "beanpay_test")
    # rate limits are off for the suite (its requests all come from 127.0.0.1 in bursts no client makes);
    # the tests of the limits turn them on in an app of their own; payout hot wallets are each test's own
    yield msgspec.structs.replace(stack, env="test", database_url=dsn, rate_limits=False, payout_wallets=[])
    await drop_database(stack.dsn, dsn)


@pytest.fixture
async def fresh_settings(stack: Settings) -> AsyncIterator[Settings]:
    """A database of the test's own, migrated, for tests that need an empty index."""
    dsn = await create_database(stack.dsn, "beanpay_fresh")
    yield msgspec.structs.replace(stack, env="test", database_url=dsn)
    await drop_database(stack.dsn, dsn)


class TestDb(Pool):
    """The production pool wrapper, plus raw SQL for a test's own set-up and assertions (production code
    only ever runs named statements; tests may say what they check inline)."""

    async def fetch(self, query: Query | str, *args: Any) -> list[asyncpg.Record]:  # type: ignore[override]
        return list(await self.raw.fetch(_text(query), *args))

    async def fetchrow(self, query: Query | str, *args: Any) -> asyncpg.Record | None:  # type: ignore[override]
        return await self.raw.fetchrow(_text(query), *args)

    async def fetchval(self, query: Query | str, *args: Any) -> Any:  # type: ignore[override]
        return await self.raw.fetchval(_text(query), *args)

    async def execute(self, query: Query | str, *args: Any) -> str:  # type: ignore[override]
        return str(await self.raw.execute(_text(query), *args))


def _text(query: Query | str) -> str:
    return query if isinstance(query, str) else query.text


async def open_test_db(dsn: str, **kw: Any) -> TestDb:
    raw = await asyncpg.create_pool(dsn, init=init_connection, **{"min_size": 1, "max_size": 5, **kw})
    assert raw is not None
    return TestDb(raw)


@pytest.fixture(scope="session")
async def db(settings: Settings) -> AsyncIterator[TestDb]:
    pool = await open_test_db(settings.dsn)
    yield pool
    await pool.close()


@pytest.fixture
async def client(settings: Settings, aiohttp_client):  # type: ignore[no-untyped-def]
    from beanpay.api.app import init_app

    return await aiohttp_client(init_app(settings))


class Tokens:
    """Bearer headers for each role."""

    def __init__(self, secret: str) -> None:
        self.secret = secret

    def header(self, role: str, *shops: uuid.UUID, sub: uuid.UUID | None = None) -> dict[str, str]:
        claims = Claims(sub=sub or uuid.uuid4(), role=role, shops=list(shops))  # type: ignore[arg-type]
        token = issue(claims, self.secret, ttl=600)
        secrets_watch.watch(token)
        return {"Authorization": f"Bearer {token}"}

    @property
    def operator(self) -> dict[str, str]:
        return self.header("operator")


@pytest.fixture(scope="session")
def tokens(settings: Settings) -> Tokens:
    secrets_watch.watch(settings.jwt_secret, settings.pg_password, settings.btcd_rpc_password)
    return Tokens(settings.jwt_secret or "")


async def wait_for(predicate, timeout: float = 30.0, interval: float = 0.2):  # type: ignore[no-untyped-def]  # noqa: ASYNC109
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await predicate()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)
