"""Two EVM chains at once: the dev stack's anvil (eth) and a second anvil with Base's chain id (8453) and its own
test-USDC, each followed by its own indexer. USDC paid on both in one run is credited once, each on its own
chain; money sent to an order's address on the other chain (the forwarder address is the same on both: the same
factory and salt) is never credited to it; an asset the order's chain does not have is a clear 4xx."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from beanpay.config import EvmChainConfig, Settings
from beanpay.deploy.devstack import evm_contracts, jsonrpc
from beanpay.deploy.devstack.anvil import Anvil
from beanpay.deploy.devstack.evm_payer import AnvilWallet
from beanpay.deploy.endpoint import free_port
from beanpay.engine.worker import settle_batch
from beanpay.indexer import registry
from beanpay.indexer.follower import Follower
from tests.bench.local import until_answering
from tests.conftest import Tokens
from tests.integration.engine_support import get_order, make_coffee_shop, place

pytest_plugins = ["tests.integration.engine_support"]
BASE_CHAIN_ID = 8453


@pytest.fixture
async def base_chain(chain_settings: Settings, tmp_path: Path) -> AsyncIterator[EvmChainConfig]:
    """A second anvil with Base's chain id and the project's contracts deployed on it."""
    anvil = Anvil(chain_settings)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    node = subprocess.Popen([str(anvil.binary), "--host", "127.0.0.1", "--port", str(port), "--chain-id",
                             str(BASE_CHAIN_ID), "--steps-tracing", "--silent"])
    try:
        await until_answering(lambda: asyncio.to_thread(jsonrpc.call, url, "eth_blockNumber"))
        record = await asyncio.to_thread(evm_contracts.deploy, url, BASE_CHAIN_ID, tmp_path)
        yield msgspec.convert({**record, "name": "base", "confirmations": 2}, EvmChainConfig)
    finally:
        node.terminate()
        node.wait(timeout=10)


async def test_usdc_on_two_chains_is_credited_once_each_on_its_own_chain(
        chain_settings: Settings, make_api, tokens: Tokens, db, base_chain: EvmChainConfig) -> None:
    eth = chain_settings.evm_chains[0]  # type: ignore[index]
    settings = msgspec.structs.replace(chain_settings, evm_chains=[eth, base_chain])
    api = await make_api(evm_chains=[eth, base_chain])
    shop = await make_coffee_shop(api, tokens)
    on_eth, on_base = await place(api, {}, shop, "eth", "tUSDC"), await place(api, {}, shop, "base", "tUSDC")
    assert on_base["payment"]["chain"] == "base" and on_base["payment"]["chain_id"] == BASE_CHAIN_ID
    assert on_base["payment"]["token_address"].lower() == base_chain.tokens[0].address.lower()
    page = await (await api.get(f"/pay/{on_base['checkout_token']}")).text()
    assert "(base)" in page  # the checkout names the chain

    wrong = await api.post("/v1/orders", json={
        "shop_id": shop.id, "items": [{"product_id": shop.product_id, "quantity": 1,
                                       "customizations": {"size": ["small"]}}],
        "payment": {"chain": "base", "asset": "USDT"}}, headers={"Idempotency-Key": uuid.uuid4().hex})
    assert wrong.status == 422 and "payment.asset" in await wrong.text()

    followers = {c.name: Follower(registry.policy(settings, c.name), db, registry.source(settings, c.name))
                 for c in (eth, base_chain)}
    for f in followers.values():
        await f.sync()
    payers = {"eth": AnvilWallet(eth, 2), "base": AnvilWallet(base_chain, 2)}
    try:
        paid: dict[str, str] = {}
        for order in (on_eth, on_base):
            pay = order["payment"]
            paid[order["id"]] = await payers[pay["chain"]].pay_usdc(pay["address"], int(pay["amount"]))
        # the eth order's address paid on base too: the same address, the wrong chain
        stray = await payers["base"].pay_usdc(on_eth["payment"]["address"], int(on_eth["payment"]["amount"]))
        for p in payers.values():
            await p.mine(3)
        for f in followers.values():
            await f.sync()
        while await settle_batch(db, settings, None) > 0:
            pass

        for order in (on_eth, on_base):
            got: dict[str, Any] = await get_order(api, shop.staff, order["id"])
            assert got["payment"]["status"] == "confirmed", got["payment"]
            assert got["payment"]["amount_received"] == order["payment"]["amount"]  # once, not twice
        rows = await db.fetch("SELECT chain, txid FROM deposits WHERE txid = ANY($1)", [*paid.values(), stray])
        assert sorted((r["chain"], r["txid"]) for r in rows) == sorted(
            [("eth", paid[on_eth["id"]]), ("base", paid[on_base["id"]])])  # the stray payment: on no order
        ledger = await db.fetch("SELECT chain, -sum(amount) AS b FROM ledger_entries WHERE account = $1 "
                                "GROUP BY chain", f"merchant:{shop.id}")
        assert {r["chain"] for r in ledger if r["b"]} == {"eth", "base"}
    finally:
        for p in payers.values():
            await p.close()
        for f in followers.values():
            await f.source.close()
