"""Fixtures for Lightning tests on real nodes: the dev stack's two lnd nodes (the merchant's, serving as the
platform's node, and a customer's wallet with a channel to it), settings that reach them, and the lightning
service run in-process."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgspec
import pytest

from beanpay.chains.lightning.lnd import LndClient
from beanpay.config import Settings, load_settings
from beanpay.deploy.devstack import stack as devstack
from beanpay.deploy.devstack.lnd import LndNode
from beanpay.engine.lightning.watcher import LightningWatcher

pytest_plugins = ["tests.integration.engine_support"]


@pytest.fixture(scope="session")
async def ln_settings(chain_settings: Settings) -> Settings:
    await asyncio.to_thread(devstack.up, chain_settings, ["btcd", "lnd-merchant", "lnd-customer"])
    loaded = load_settings()
    return msgspec.structs.replace(
        chain_settings, lightning_rest_url=loaded.lightning_rest_url,
        lightning_tls_cert_file=loaded.lightning_tls_cert_file, lightning_macaroon=loaded.lightning_macaroon,
        lightning_credentials_key=loaded.lightning_credentials_key, lightning_health_seconds=0.5,
        lightning_pay_macaroon=loaded.lightning_pay_macaroon, lightning_pay_daily_limit_sat=200_000)


@pytest.fixture
async def ln_api(ln_settings: Settings, aiohttp_client):  # type: ignore[no-untyped-def]
    from beanpay.api.app import init_app

    return await aiohttp_client(init_app(ln_settings))


@pytest.fixture
async def customer_node(ln_settings: Settings) -> AsyncIterator[LndClient]:
    client = LndNode(ln_settings, "customer").client()
    yield client
    await client.close()


@pytest.fixture
def merchant_node(ln_settings: Settings) -> LndNode:
    return LndNode(ln_settings, "merchant")


class Running:
    """The lightning service in this process: started, stopped (like a crash: tasks cancelled), restarted."""

    def __init__(self, settings: Settings, db: Any) -> None:
        self.settings, self.db = settings, db
        self.watcher: LightningWatcher | None = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> LightningWatcher:
        self._stop = asyncio.Event()
        self.watcher = LightningWatcher(self.settings, self.db)
        self._task = asyncio.create_task(self.watcher.run(self._stop))
        await until(self._platform_ready, "the platform's node to be registered and ready")
        return self.watcher

    async def _platform_ready(self) -> bool:
        return bool(await self.db.fetchval(
            "SELECT health = 'ready' FROM lightning_nodes WHERE shop_id IS NULL ORDER BY updated_at DESC LIMIT 1"))

    async def kill(self) -> None:
        if self._task is not None:
            self._task.cancel()
            done, _ = await asyncio.wait({self._task}, timeout=15)
            if not done:  # a task that does not end when cancelled is a bug of the service: say where it hangs
                stacks = {t.get_name(): t.get_stack(limit=8) for t in asyncio.all_tasks() if not t.done()}
                raise AssertionError(f"the lightning service did not stop within 15 s: {stacks}")
            with contextlib.suppress(asyncio.CancelledError, Exception):
                self._task.result()
            self._task = None


@pytest.fixture
async def lightning_service(ln_settings: Settings, db: Any) -> AsyncIterator[Running]:
    running = Running(ln_settings, db)
    await running.start()
    yield running
    await running.kill()


async def until(check: Callable[[], Awaitable[bool]], what: str, within: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)
