"""A drill's shop: seeded through the API, orders placed over HTTP by customers, paid with real tUSDC
transfers on anvil, and a merchant endpoint that verifies every webhook (the reference library)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from beanpay.config import EvmChainConfig
from beanpay.deploy.devstack.btc_payer import RegtestWallet
from beanpay.deploy.devstack.evm_payer import AnvilWallet
from beanpay.deploy.endpoint import Endpoint
from beanpay.tokens import Claims, issue

TTL = 6 * 3600


class DrillError(Exception):
    """A drill step failed; the message says which."""


@dataclass(frozen=True)
class Placed:
    id: str
    address: str
    amount: int  # base units: tUSDC's, or sats
    chain: str = "eth"


@dataclass
class Merchant:
    """The shop's webhook endpoint: every event id per order, in the order received, and bad signatures."""

    port: int
    secret: str = ""
    events: dict[str, list[tuple[str, str]]] = field(default_factory=lambda: defaultdict(list))
    bad_signatures: int = 0
    runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        try:
            message = Webhook(self.secret).verify(await request.read(), dict(request.headers))
        except WebhookVerificationError:
            self.bad_signatures += 1
            return web.Response(status=400)
        order_id = message["data"].get("order_id")
        if order_id is not None:
            pair = (request.headers["webhook-id"], message["type"])
            if pair not in self.events[order_id]:  # a retry after a lost answer is the same message
                self.events[order_id].append(pair)
        return web.Response(status=204)

    async def start(self) -> None:
        self.runner = await Endpoint(self.handle, "/hooks", port=self.port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


class Shop:
    """One shop with one product and deep stock, on an API reached at `base`."""

    def __init__(self, base: str, jwt_secret: str) -> None:
        self.base, self.secret = base, jwt_secret
        self.operator = self._bearer(Claims(sub=uuid.uuid4(), role="operator"))
        self.id = self.product_id = ""
        self.merchant: dict[str, str] = {}

    def _bearer(self, claims: Claims) -> dict[str, str]:
        return {"Authorization": f"Bearer {issue(claims, self.secret, ttl=TTL)}"}

    async def call(self, http: aiohttp.ClientSession, method: str, path: str, who: dict[str, str],
                   body: Any = None, key: str | None = None) -> Any:
        headers = {**who, **({"Idempotency-Key": key} if key else {})}
        async with http.request(method, self.base + path, json=body, headers=headers) as resp:
            if resp.status >= 300:
                raise DrillError(f"{method} {path}: {resp.status} {await resp.text()}")
            return await resp.json()

    async def seed(self, http: aiohttp.ClientSession, hooks: Merchant, stock: int = 1_000_000) -> None:
        shop = await self.call(http, "POST", "/v1/shops", self.operator, {"name": "Drill Roasters",
                                                                          "address": "1 Failover Way"})
        product = await self.call(http, "POST", "/v1/products", self.operator,
                                  {"name": "Drip", "category": "coffee", "base_price": "3.00"})
        self.id, self.product_id = shop["id"], product["id"]
        await self.call(http, "PUT", f"/v1/shops/{self.id}/products/{self.product_id}", self.operator,
                        {"price": "3.00"})
        await self.call(http, "POST", "/v1/supplies", self.operator,
                        {"shop_id": self.id, "product_id": self.product_id, "quantity": stock, "unit": "cups",
                         "reorder_level": 0})
        self.merchant = self._bearer(Claims(sub=uuid.uuid4(), role="merchant", shops=[uuid.UUID(self.id)]))
        hook = await self.call(http, "POST", f"/v1/shops/{self.id}/webhooks", self.merchant,
                               {"url": f"http://127.0.0.1:{hooks.port}/hooks", "event_types": ["*"]})
        hooks.secret = hook["secret"]

    def customer(self) -> dict[str, str]:
        return self._bearer(Claims(sub=uuid.uuid4(), role="customer"))

    def order_body(self, chain: str = "eth") -> dict[str, Any]:
        return {"shop_id": self.id, "items": [{"product_id": self.product_id}],
                "payment": {"chain": chain, "asset": "tUSDC" if chain == "eth" else "BTC"}}

    async def order(self, http: aiohttp.ClientSession, key: str | None = None, chain: str = "eth") -> Placed:
        made = await self.call(http, "POST", "/v1/orders", self.customer(), self.order_body(chain),
                               key=key or uuid.uuid4().hex)
        return placed(made)


def placed(made: dict[str, Any]) -> Placed:
    """What the API answered for a new order."""
    pay = made["payment"]
    return Placed(made["id"], pay["address"], int(pay["amount"]), pay["chain"])


class Payer:
    """Real transactions: ERC-20 transfers from one anvil dev account, and, given a regtest wallet, Bitcoin
    payments from the miner's coins (one at a time each: nonces and coins are taken in turn)."""

    def __init__(self, chain: EvmChainConfig, key_index: int = 2, btc: RegtestWallet | None = None) -> None:
        self.wallet, self.btc = AnvilWallet(chain, key_index), btc

    async def pay(self, order: Placed) -> str:
        if order.chain == "btc":
            if self.btc is None:
                raise DrillError("a Bitcoin order, but no regtest wallet to pay it")
            return (await self.btc.pay(order.address, order.amount)).txid
        return await self.wallet.pay_usdc(order.address, order.amount)

    async def mine(self, blocks: int) -> None:
        await self.wallet.mine(blocks)
        if self.btc is not None:
            await self.btc.mine(blocks)

    async def close(self) -> None:
        await self.wallet.close()
        if self.btc is not None:
            await self.btc.close()
