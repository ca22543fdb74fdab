"""Every service rides through its dependencies restarting, and starts before they are up.

The five services run as separate processes (as in production) against a PostgreSQL and a Redis of
the test's own (restarting the shared ones would break the session's other connections) and the
shared Kafka and anvil. PostgreSQL is down when they start; then PostgreSQL, Kafka and Redis are
restarted in turn under them. Each time: no process exits, each reports not-ready while its database
is away (the API answers 503 with Retry-After), and a new order is paid, confirmed and announced to
the merchant's webhook afterwards.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp import web
from standardwebhooks.webhooks import Webhook

from beanpay.config import Settings
from beanpay.deploy.devstack.evm_payer import AnvilWallet
from beanpay.deploy.devstack.kafka import Kafka
from beanpay.deploy.devstack.postgres import Postgres
from beanpay.deploy.devstack.redis import Redis
from beanpay.deploy.endpoint import Endpoint
from beanpay.engine.webhooks.fanout import TOPICS
from beanpay.migrate import migrate
from beanpay.services import commands
from beanpay.tokens import Claims, issue
from tests.bench.local import free_port, group_at_end
from tests.conftest import wait_for
from tests.harness.processes import stop_processes

pytest_plugins = ["tests.integration.engine_support"]

BEANPAY = str(Path(sys.executable).with_name("beanpay"))
SERVICES = commands("api", "relay", "engine", "webhooks", "index-eth")


class Receiver:
    def __init__(self) -> None:
        self.endpoint = Endpoint(self.handle, "/hook")
        self.port, self.secret, self.orders = self.endpoint.port, "", set[str]()

    async def handle(self, request: web.Request) -> web.Response:
        message = Webhook(self.secret).verify(await request.read(), dict(request.headers))
        self.orders.add(message["data"]["order_id"])
        return web.Response(status=204)

    async def start(self) -> web.AppRunner:
        return await self.endpoint.start()


class Stack:
    """The test's own PostgreSQL and Redis, and the services' processes."""

    def __init__(self, base: Settings, root: Path) -> None:
        self.settings = msgspec.structs.replace(
            base, state_dir=str(root), pg_port=free_port(), redis_port=free_port(), database_url=None,
            pg_database="beanpay", env="dev")
        self.postgres, self.redis = Postgres(self.settings), Redis(self.settings)
        self.api_port = free_port()
        self.ops_ports = {name: free_port() for name in SERVICES if name != "api"}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.group = f"restarts-{uuid.uuid4().hex}"

    def env(self, name: str) -> dict[str, str]:
        s = self.settings
        env = {**os.environ, "BEANPAY_STATE_DIR": s.state_dir, "BEANPAY_PG_PORT": str(s.pg_port),
               "BEANPAY_PG_PASSWORD": s.pg_password or "", "BEANPAY_REDIS_PORT": str(s.redis_port),
               "BEANPAY_JWT_SECRET": s.jwt_secret or "", "BEANPAY_BTCD_RPC_PASSWORD": s.btcd_rpc_password or "",
               "BEANPAY_EVM_CHAINS": msgspec.json.encode(s.evm_chains).decode(),
               "BEANPAY_API_PORT": str(self.api_port), "BEANPAY_LOG_LEVEL": "warning",
               "BEANPAY_WEBHOOK_GROUP": self.group, "BEANPAY_WEBHOOK_BACKOFF_SECONDS": "0.5",
               "BEANPAY_WEBHOOK_BACKOFF_CAP_SECONDS": "1", "BEANPAY_ENGINE_POLL_SECONDS": "0.5"}
        if name in self.ops_ports:
            env["BEANPAY_METRICS_PORT"] = str(self.ops_ports[name])
        return env

    def start_services(self) -> None:
        logs = Path(self.settings.state_dir) / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        for name, args in SERVICES.items():
            with (logs / f"{name}.log").open("ab") as out:
                self.procs[name] = subprocess.Popen([BEANPAY, *args], env=self.env(name), stdout=out,
                                                    stderr=subprocess.STDOUT)

    def alive(self) -> dict[str, int | None]:
        return {name: p.poll() for name, p in self.procs.items()}

    async def readiness(self) -> dict[str, int]:
        urls = {"api": f"http://127.0.0.1:{self.api_port}/readyz",
                **{n: f"http://127.0.0.1:{p}/readyz" for n, p in self.ops_ports.items()}}
        found = {}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as s:
            for name, url in urls.items():
                try:
                    async with s.get(url) as r:
                        found[name] = r.status
                except (aiohttp.ClientError, TimeoutError):
                    found[name] = 0
        return found

    def stop(self) -> None:
        stop_processes(self.procs.values())
        self.redis.stop()
        self.postgres.stop()


@pytest.fixture
async def own_stack(chain_settings: Settings) -> AsyncIterator[Stack]:
    root = Path(chain_settings.state_dir) / f"test-restarts-{uuid.uuid4().hex[:8]}"
    made = Stack(chain_settings, root)
    try:
        yield made
    finally:
        made.stop()
        for name, p in made.procs.items():
            log = root / "logs" / f"{name}.log"
            if p.returncode not in (0, -15, None) and log.exists():
                print(f"--- {name} (exit {p.returncode})\n{log.read_text()[-3000:]}")
        shutil.rmtree(root, ignore_errors=True)


async def _all_answering(stack: Stack) -> dict[str, int] | None:
    found = await stack.readiness()
    return found if 0 not in found.values() else None


async def _all_ready(stack: Stack) -> bool:
    return set((await stack.readiness()).values()) == {200}


async def test_services_start_before_postgres_and_ride_through_restarts(own_stack: Stack, chain_settings) -> None:
    stack = own_stack
    stack.postgres.install()
    await asyncio.to_thread(stack.postgres.start)  # initdb and the role, then down again: the services start first
    await asyncio.to_thread(stack.postgres.stop)
    await asyncio.to_thread(stack.redis.start)
    await group_at_end(stack.settings.kafka_servers, stack.group, TOPICS)
    stack.start_services()
    # every service comes up and answers (its imports take seconds on a busy machine), none exits
    readiness = await wait_for(lambda: _all_answering(stack), timeout=90)  # slow beside the drills (test-lanes)
    assert set(stack.alive().values()) == {None}, "no service exits while PostgreSQL is down"
    assert readiness["api"] == 503 and all(readiness[n] == 503 for n in stack.ops_ports), readiness

    await asyncio.to_thread(stack.postgres.start)
    await migrate(stack.settings.dsn)
    await wait_for(lambda: _all_ready(stack), timeout=60)

    receiver = Receiver()
    runner = await receiver.start()
    payer = AnvilWallet(chain_settings.evm_chains[0], 2)
    try:
        http = aiohttp.ClientSession(base_url=f"http://127.0.0.1:{stack.api_port}")
        shop, product = await _seed(http, stack.settings, receiver)
        customer = _auth(issue(Claims(sub=uuid.uuid4(), role="customer"), stack.settings.jwt_secret or "", ttl=600))

        async def paid_and_announced(round_: str) -> None:
            order = await _call(http, "POST", "/v1/orders", customer, {
                "shop_id": shop, "items": [{"product_id": product}], "payment": {"chain": "eth", "asset": "tUSDC"}})
            await payer.pay_usdc(order["payment"]["address"], int(order["payment"]["amount"]))

            async def done() -> bool:
                await payer.mine(1)
                got = await _call(http, "GET", f"/v1/orders/{order['id']}", customer)
                return got["status"] == "confirmed" and order["id"] in receiver.orders

            await wait_for(done, timeout=90, interval=0.5)
            assert set(stack.alive().values()) == {None}, f"a service exited ({round_})"

        await paid_and_announced("first start")

        # PostgreSQL restarts: writes are refused with 503 and Retry-After meanwhile, nobody exits
        await asyncio.to_thread(stack.postgres.stop)
        async with http.post("/v1/orders", json={"shop_id": shop, "items": [{"product_id": product}],
                                                 "payment": {"chain": "eth", "asset": "tUSDC"}},
                             headers=customer) as refused:
            assert refused.status == 503 and int(refused.headers["Retry-After"]) > 0
        await wait_for(lambda: _not_ready_everywhere(stack), timeout=30)
        await asyncio.sleep(2)
        assert set(stack.alive().values()) == {None}
        await asyncio.to_thread(stack.postgres.start)
        await wait_for(lambda: _all_ready(stack), timeout=60)
        await paid_and_announced("after a PostgreSQL restart")

        kafka = Kafka(chain_settings)
        await asyncio.to_thread(kafka.stop)
        await asyncio.sleep(3)
        await asyncio.to_thread(kafka.start)
        await paid_and_announced("after a Kafka restart")

        # both at once (the fan-out once died of this: stopping its consumer raised CancelledError)
        await asyncio.to_thread(stack.postgres.stop)
        await asyncio.to_thread(kafka.stop)
        await asyncio.sleep(5)
        assert set(stack.alive().values()) == {None}, "no service exits with PostgreSQL and Kafka both down"
        await asyncio.to_thread(kafka.start)
        await asyncio.to_thread(stack.postgres.start)
        await wait_for(lambda: _all_ready(stack), timeout=60)
        await paid_and_announced("after PostgreSQL and Kafka were down together")

        await asyncio.to_thread(stack.redis.stop)
        async with http.get(f"/v1/shops/{shop}/menu") as menu:  # the cache is away: served from PostgreSQL
            assert menu.status == 200
        await asyncio.to_thread(stack.redis.start)
        await paid_and_announced("after a Redis restart")
        await http.close()
    finally:
        await payer.close()
        await runner.cleanup()


async def _not_ready_everywhere(stack: Stack) -> bool:
    return all(status == 503 for status in (await stack.readiness()).values())


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _call(http: aiohttp.ClientSession, method: str, path: str, headers: dict[str, str],
                body: Any = None) -> Any:
    async with http.request(method, path, json=body, headers={**headers, "Idempotency-Key": uuid.uuid4().hex}) as r:
        data = await r.json()
        assert r.status < 300, (method, path, r.status, data)
        return data


async def _seed(http: aiohttp.ClientSession, settings: Settings, receiver: Receiver) -> tuple[str, str]:
    operator = _auth(issue(Claims(sub=uuid.uuid4(), role="operator"), settings.jwt_secret or "", ttl=600))
    shop = await _call(http, "POST", "/v1/shops", operator, {"name": "Restart Roasters", "address": "1 Uptime St"})
    product = await _call(http, "POST", "/v1/products", operator, {"name": "Drip", "category": "coffee",
                                                                   "base_price": "3.00"})
    await _call(http, "PUT", f"/v1/shops/{shop['id']}/products/{product['id']}", operator, {"price": "3.00"})
    merchant = _auth(issue(Claims(sub=uuid.uuid4(), role="merchant", shops=[uuid.UUID(shop["id"])]),
                           settings.jwt_secret or "", ttl=600))
    hook = await _call(http, "POST", f"/v1/shops/{shop['id']}/webhooks", merchant,
                       {"url": f"http://127.0.0.1:{receiver.port}/hook", "event_types": ["order.confirmed"]})
    receiver.secret = hook["secret"]
    return shop["id"], product["id"]
