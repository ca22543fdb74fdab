"""The EVM indexer behind providers that refuse, throttle, lag and lie (tests/harness/rpc_faults.py in front
of the real anvil). Whatever they do, every order's deposits are found once, with their amounts, and confirm.

Each test indexes into a database of its own, so its follower starts at the chain's tip and sees only the
payments the test makes."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec
import pytest

from beanpay.chains.evm.create2 import forwarder_address
from beanpay.config import EvmChainConfig, RpcEndpointConfig, Settings
from beanpay.engine import addresses
from beanpay.indexer import registry
from beanpay.indexer.follower import Follower
from tests.conftest import TestDb, open_test_db
from tests.harness.rpc_faults import Faults, RpcFaultProxy

pytest_plugins = ["tests.integration.test_contracts"]


@pytest.fixture
async def own_db(fresh_settings: Settings) -> AsyncIterator[TestDb]:
    db = await open_test_db(fresh_settings.dsn)
    yield db
    await db.close()


@pytest.fixture
async def proxies(evm: EvmChainConfig) -> AsyncIterator[Callable[..., Any]]:
    made: list[RpcFaultProxy] = []

    async def make(**faults: Any) -> RpcFaultProxy:
        made.append(RpcFaultProxy(evm.rpc_url, Faults(**faults)))
        await made[-1].start()
        return made[-1]

    yield make
    for p in made:
        await p.stop()


def follower_through(settings: Settings, evm: EvmChainConfig, db: TestDb, url: str,
                     *more: RpcEndpointConfig, **fields: Any) -> Follower:
    chain = msgspec.structs.replace(evm, rpc_url=url, endpoints=list(more), start_height=None, max_head_lag_blocks=4,
                                    **fields)
    settings = msgspec.structs.replace(settings, evm_chains=[chain])
    return Follower(registry.policy(settings, chain.name), db, registry.source(settings, chain.name))


async def watch_order(db: TestDb, evm: EvmChainConfig) -> str:
    address = forwarder_address(evm.factory, evm.implementation, uuid.uuid4(), evm.treasury)
    async with db.acquire() as conn:
        await addresses.watch(conn, evm.name, address, None, None, uuid.uuid4())
    return address


async def deposits(db: TestDb) -> set[tuple[str, str, int, str]]:
    rows = await db.fetch("SELECT asset, txid, amount, status FROM deposits")
    assert len(rows) == len({(r["asset"], r["txid"]) for r in rows})  # nothing twice
    return {(r["asset"], r["txid"], int(r["amount"]), r["status"]) for r in rows}


async def sync_until(follower: Follower, done: Callable[[], Any] | None, seconds: float) -> None:
    """Sync as the follower's loop does (a failed sync is retried at the next poll) until `done()`, or
    (None) until one sync works."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            await follower.sync()
            worked = True
        except Exception:  # the follower's loop logs and retries; so does this
            worked = False
            await asyncio.sleep(0.2)
        if (worked and done is None) or (done is not None and await done()):
            return
        assert time.monotonic() < deadline, "not done in time"


async def test_long_downtime_behind_a_capped_throttling_provider_loses_nothing(
        fresh_settings, own_db, evm, wallets, proxies) -> None:
    proxy = await proxies(range_cap=10, cap_style="infura", rate_limit_every=7, retry_after="1", truncate_every=11,
                          reset_every=13, wrong_log_hashes=2)
    follower = follower_through(fresh_settings, evm, own_db, proxy.url)
    await sync_until(follower, None, 60)  # started at the tip, through the proxy
    payer, paid = wallets(2), set()
    for i in range(8):  # the indexer is down while 8 orders are paid over 320 blocks: more than its window
        address = await watch_order(own_db, evm)
        if i % 2:
            paid.add(("tUSDC", await payer.pay_usdc(address, 1_000_000 + i), 1_000_000 + i, "confirmed"))
        else:
            paid.add(("ETH", await payer.pay_eth(address, 10**15 + i), 10**15 + i, "confirmed"))
        await payer.mine(40)

    async def all_confirmed() -> bool:
        return await deposits(own_db) == paid

    await sync_until(follower, all_confirmed, 240)
    assert proxy.refused.get("range-infura", 0) > 0 and proxy.refused.get("429", 0) > 0
    assert proxy.refused.get("truncated", 0) > 0 and proxy.refused.get("reset", 0) > 0
    assert proxy.refused.get("wrong-log-hash", 0) == 2  # refused and asked again: nothing counted from it
    await follower.source.close()


@pytest.mark.parametrize("style", ["alchemy", "ankr"])
async def test_a_range_cap_with_or_without_a_suggestion_is_learnt(
        fresh_settings, own_db, evm, wallets, proxies, style) -> None:
    proxy = await proxies(range_cap=10, cap_style=style)
    follower = follower_through(fresh_settings, evm, own_db, proxy.url)
    await follower.sync()
    payer = wallets(2)
    address = await watch_order(own_db, evm)
    await payer.mine(30)
    txid = await payer.pay_usdc(address, 777)
    await payer.mine(30)
    await sync_until(follower, lambda: _has(own_db, ("tUSDC", txid, 777, "confirmed")), 60)
    state = follower.source.rpc.pool.states[0]  # type: ignore[attr-defined]
    assert state.logs_span is not None and state.logs_span <= 10  # remembered: the next ranges are not refused
    refused = proxy.refused[f"range-{style}"]
    await payer.mine(45)
    await follower.sync()
    assert proxy.refused[f"range-{style}"] == refused
    await follower.source.close()


async def _has(db: TestDb, deposit: tuple[str, str, int, str]) -> bool:
    return deposit in await deposits(db)


async def test_a_backend_that_has_not_got_the_newest_logs_cannot_hide_a_payment(
        fresh_settings, own_db, evm, wallets, proxies) -> None:
    """A load balancer's backends: the head from a fresh one, eth_getLogs from one a few blocks behind, which
    answers the newest blocks with nothing. The block's bloom says otherwise: asked by hash, the lagging
    backend errs instead, and the block waits until an answer covers it."""
    payer = wallets(2)
    head = int(await payer.rpc("eth_blockNumber", []), 16)
    proxy = await proxies(logs_frozen_at=head)
    follower = follower_through(fresh_settings, evm, own_db, proxy.url)
    await follower.sync()
    address = await watch_order(own_db, evm)
    txid = await payer.pay_usdc(address, 4_200_000)
    await payer.mine(4)
    for _ in range(3):
        try:
            await follower.sync()
        except LookupError:
            pass
    assert proxy.refused.get("logs-hidden", 0) > 0  # the lie was told
    cursor = await own_db.fetchval("SELECT tip_height FROM chain_cursors WHERE chain = $1", evm.name)
    paid_at = int((await payer.rpc("eth_getTransactionReceipt", [txid]))["blockNumber"], 16)
    assert cursor < paid_at  # the block with the payment was not marked scanned on an empty answer

    proxy.faults.logs_frozen_at = None  # the backend catches up
    await sync_until(follower, lambda: _has(own_db, ("tUSDC", txid, 4_200_000, "confirmed")), 60)
    await follower.source.close()


async def test_two_endpoints_one_killed_one_lagging_and_a_third_over_its_quota(
        fresh_settings, own_db, evm, wallets, proxies) -> None:
    over_quota, healthy, lagging = await proxies(quota=True), await proxies(), await proxies(head_lag=2)
    follower = follower_through(fresh_settings, evm, own_db, over_quota.url,
                                RpcEndpointConfig(healthy.url, name="healthy"),
                                RpcEndpointConfig(lagging.url, name="lagging"))
    await sync_until(follower, None, 60)
    payer = wallets(2)
    first = await watch_order(own_db, evm)
    txid = await payer.pay_eth(first, 10**15)
    await payer.mine(3)
    await sync_until(follower, lambda: _has(own_db, ("ETH", txid, 10**15, "confirmed")), 60)
    states = {s.name: s for s in follower.source.rpc.pool.states}  # type: ignore[attr-defined]
    assert states[f"http://127.0.0.1:{over_quota.port}"].refused is not None  # out of rotation, alerted

    await healthy.stop()  # the best endpoint dies: the lagging one carries on
    second = await watch_order(own_db, evm)
    again = await payer.pay_usdc(second, 5_000)
    await payer.mine(5)
    started = time.monotonic()
    await sync_until(follower, lambda: _has(own_db, ("tUSDC", again, 5_000, "confirmed")), 90)
    print(f"failed over to the lagging endpoint and confirmed in {time.monotonic() - started:.1f} s")
    assert lagging.requests > 0
    await follower.source.close()


async def test_finality_follows_the_nodes_finalized_block_and_falls_back_to_depth(
        fresh_settings, own_db, evm, wallets, proxies) -> None:
    """anvil's `finalized` block trails its tip by two epochs (64 blocks); the window of headers kept (what a reorg
    may still reach) follows it, not the configured depth of 5, and follows the depth when the node stops telling."""
    proxy = await proxies()
    follower = follower_through(fresh_settings, evm, own_db, proxy.url, finality="tag", finality_depth=5)
    await follower.sync()
    payer = wallets(2)
    await payer.mine(80)
    await follower.sync()
    tip = int(await payer.rpc("eth_blockNumber", []), 16)
    finalized = int((await payer.rpc("eth_getBlockByNumber", ["finalized", False]))["number"], 16)
    assert tip - finalized == 64

    async def window() -> tuple[int, int]:
        row = await own_db.fetchrow("SELECT min(height) AS low, max(height) AS high FROM chain_blocks WHERE chain = $1",
                                    evm.name)
        return row["low"], row["high"]

    assert await window() == (finalized + 1, tip)
    proxy.faults.no_finalized = True  # a node without the tag: the depth again
    await payer.mine(3)
    await follower.sync()
    assert await window() == (tip + 3 - 5, tip + 3)
    await follower.source.close()
