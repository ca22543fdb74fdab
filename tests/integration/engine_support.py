"""Fixtures for engine tests: settings with both chains, an API client, a shop with a menu and stock,
order placement, and the engine's workers driven step by step (followers synced, queue drained)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgspec
import pytest

from beanpay.config import Settings, load_settings
from beanpay.deploy.devstack import stack as devstack
from beanpay.deploy.devstack.btc_payer import RegtestWallet
from beanpay.deploy.devstack.evm_payer import AnvilWallet
from beanpay.engine.invalidation import Invalidator
from beanpay.engine.worker import settle_batch
from beanpay.indexer import registry
from beanpay.indexer.follower import Follower
from tests.conftest import Tokens
from tests.integration.helpers import make_product, make_shop, put_on_menu


@pytest.fixture(scope="session")
async def chain_settings(settings: Settings) -> Settings:
    """The session's settings with anvil and btcd up, so both chains (and their contracts) are configured."""
    await asyncio.to_thread(devstack.up, settings, ["anvil", "btcd"])
    loaded = load_settings()
    return msgspec.structs.replace(settings, evm_chains=loaded.evm_chains, btc_account_xpub=loaded.btc_account_xpub)


@pytest.fixture
async def api(chain_settings: Settings, aiohttp_client):  # type: ignore[no-untyped-def]
    from beanpay.api.app import init_app

    return await aiohttp_client(init_app(chain_settings))


@pytest.fixture
def make_api(chain_settings: Settings, aiohttp_client):  # type: ignore[no-untyped-def]
    """make_api(**overrides): an API client whose settings differ (e.g. a short payment window)."""
    from beanpay.api.app import init_app

    async def make(**overrides: Any) -> Any:
        return await aiohttp_client(init_app(msgspec.structs.replace(chain_settings, **overrides)))

    return make


class Shop(msgspec.Struct):
    id: str
    product_id: str
    supply_id: str
    merchant: dict[str, str]
    staff: dict[str, str]


async def make_coffee_shop(api: Any, tokens: Tokens, *, stock: int = 100, price: str = "4.50") -> Shop:
    shop = await make_shop(api, tokens)
    product = await make_product(api, tokens, customizations=[
        {"name": "size", "required": True, "options": [{"name": "small"}, {"name": "large", "price_delta": "0.75"}]},
        {"name": "extras", "multiple": True, "options": [{"name": "vanilla", "price_delta": "0.40"},
                                                          {"name": "shot", "price_delta": "0.90"}]}])
    await put_on_menu(api, tokens, shop["id"], product["id"], price)
    resp = await api.post("/v1/supplies", json={"shop_id": shop["id"], "product_id": product["id"],
                                                "quantity": stock, "unit": "cups", "reorder_level": 5},
                          headers=tokens.operator)
    assert resp.status == 201, await resp.text()
    supply = await resp.json()
    sid = uuid.UUID(shop["id"])
    return Shop(shop["id"], product["id"], supply["id"], tokens.header("merchant", sid), tokens.header("staff", sid))


async def place(api: Any, headers: dict[str, str], shop: Shop, chain: str, asset: str, *, quantity: int = 1,
                key: str | None = None, size: str = "small") -> dict[str, Any]:
    body = {"shop_id": shop.id, "items": [{"product_id": shop.product_id, "quantity": quantity,
                                           "customizations": {"size": [size]}}],
            "payment": {"chain": chain, "asset": asset}}
    resp = await api.post("/v1/orders", json=body, headers={**headers, "Idempotency-Key": key or uuid.uuid4().hex})
    assert resp.status == 201, await resp.text()
    return dict(await resp.json())


async def get_order(api: Any, headers: dict[str, str], order_id: str) -> dict[str, Any]:
    resp = await api.get(f"/v1/orders/{order_id}", headers=headers)
    assert resp.status == 200, await resp.text()
    return dict(await resp.json())


async def pay_directly(db: Any, order: dict[str, Any], amount: int | None = None) -> None:
    """Record a confirmed deposit for the order's address as the indexer would (its own tests cover the
    chain side); the engine then settles it like any other."""
    pay = order["payment"]
    await db.execute(
        """INSERT INTO deposits (chain, asset, txid, output_index, address, amount, block_hash, block_height,
                                 status, confirmed_at)
           VALUES ($1, $2, $3, 0, $4, $5, $6, 1, 'confirmed', now())""",
        pay["chain"], pay["asset"], "0x" + uuid.uuid4().hex * 2, pay["address"],
        amount if amount is not None else int(pay["amount"]), "0x" + uuid.uuid4().hex * 2)


@pytest.fixture
async def engine(chain_settings: Settings, db) -> AsyncIterator[Callable[[], Awaitable[int]]]:  # type: ignore[no-untyped-def]
    """engine(): drain the payment queue once, like the engine process does; returns addresses settled."""

    invalidator = Invalidator(chain_settings.redis_dsn, chain_settings.redis_timeout_seconds)

    async def drain() -> int:
        total = 0
        while (n := await settle_batch(db, chain_settings, invalidator)) > 0:
            total += n
        return total

    yield drain
    await invalidator.close()


@pytest.fixture
async def eth_follower(chain_settings: Settings, db) -> AsyncIterator[Follower]:  # type: ignore[no-untyped-def]
    chain = chain_settings.evm_chains[0].name  # type: ignore[index]
    f = Follower(registry.policy(chain_settings, chain), db, registry.source(chain_settings, chain))
    await f.sync()
    yield f
    await f.source.close()


@pytest.fixture
async def btc_follower(chain_settings: Settings, db) -> AsyncIterator[Follower]:  # type: ignore[no-untyped-def]
    f = Follower(registry.policy(chain_settings, "btc"), db, registry.source(chain_settings, "btc"))
    await f.sync()
    yield f
    await f.source.close()


@pytest.fixture
async def anvil(chain_settings: Settings) -> AsyncIterator[Callable[[int], AnvilWallet]]:
    made: list[AnvilWallet] = []

    def make(index: int = 0) -> AnvilWallet:
        made.append(AnvilWallet(chain_settings.evm_chains[0], index))  # type: ignore[index]
        return made[-1]

    yield make
    for w in made:
        await w.close()


@pytest.fixture(scope="session")
async def btc_wallet(chain_settings: Settings) -> AsyncIterator[RegtestWallet]:
    w = RegtestWallet(chain_settings)
    await w.ensure_funds()
    yield w
    await w.close()
