"""The EVM follower against a real anvil: native ETH (plain and internal), test-USDC, failed
transactions, confirmations, and reorgs made with anvil_reorg."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from beanpay.chains.evm.create2 import forwarder_address
from beanpay.engine import addresses
from beanpay.indexer import registry
from beanpay.indexer.follower import Follower

pytest_plugins = ["tests.integration.test_contracts"]


@pytest.fixture
async def follower(settings, db, evm) -> AsyncIterator[Follower]:  # type: ignore[no-untyped-def]
    from beanpay.config import load_settings

    settings = settings if settings.evm_chains else load_settings()
    f = Follower(registry.policy(settings, evm.name), db, registry.source(settings, evm.name))
    await f.sync()
    yield f
    await f.source.close()


async def _watch_order(db, evm) -> str:  # type: ignore[no-untyped-def]
    order = uuid.uuid4()
    address = forwarder_address(evm.factory, evm.implementation, order, evm.treasury)
    async with db.acquire() as conn:
        await addresses.watch(conn, evm.name, address, None, None, order)
    return address


async def _deposits(db, address: str) -> list:  # type: ignore[no-untyped-def,type-arg]
    return list(await db.fetch("SELECT * FROM deposits WHERE address = $1 ORDER BY asset, txid, output_index",
                               address))


async def test_eth_token_and_internal_payments_are_found_and_confirmed(db, evm, follower, wallets) -> None:
    payer = wallets(0)
    address = await _watch_order(db, evm)
    plain = await payer.pay_eth(address, 2 * 10**15)
    token = await payer.pay_usdc(address, 4_250_000)
    contract = await payer.deploy("EthPayer")
    internal = await payer.send(await contract.functions.pay(address).build_transaction(
        {"from": payer.account.address, "value": 5 * 10**14}))
    reverted = await payer.send(await contract.functions.payAndRevert(address).build_transaction(
        {"from": payer.account.address, "value": 7 * 10**14, "gas": 100_000}))
    assert (await payer.w3.eth.get_transaction_receipt(reverted))["status"] == 0  # type: ignore[arg-type]
    await follower.sync()
    found = {(d["asset"], d["txid"], int(d["amount"])) for d in await _deposits(db, address)}
    assert found == {("ETH", plain, 2 * 10**15), ("tUSDC", token, 4_250_000), ("ETH", internal, 5 * 10**14)}
    await payer.mine(3)
    await follower.sync()
    assert {d["status"] for d in await _deposits(db, address)} == {"confirmed"}
    events = await db.fetch("SELECT event_type FROM event_outbox WHERE aggregate_id = $1", address)
    assert sorted(e["event_type"] for e in events) == ["deposit.confirmed"] * 3 + ["deposit.detected"] * 3


async def test_reorg_drops_a_payment_then_it_is_mined_again_higher(db, evm, follower, wallets) -> None:
    payer = wallets(2)
    address = await _watch_order(db, evm)
    txid = await payer.pay_eth(address, 10**15)
    await follower.sync()
    (first,) = await _deposits(db, address)
    assert first["status"] == "confirming"
    mined_at = first["block_height"]

    await payer.rpc("anvil_reorg", [1, []])  # replace the block holding the payment with an empty one
    assert await payer.rpc("eth_getTransactionReceipt", [txid]) is None
    await follower.sync()
    (dropped,) = await _deposits(db, address)
    assert dropped["status"] == "orphaned" and dropped["block_hash"] is None

    await payer.mine(1)
    again_txid = await payer.pay_eth(address, 10**15)  # same nonce and fields: the same signed transaction
    assert again_txid == txid
    await payer.mine(2)
    await follower.sync()
    (again,) = await _deposits(db, address)
    assert again["id"] == first["id"] and again["block_height"] > mined_at
    assert again["status"] == "confirmed"
    events = await db.fetch("SELECT event_type FROM event_outbox WHERE aggregate_id = $1 ORDER BY id", address)
    assert [e["event_type"] for e in events] == [
        "deposit.detected", "deposit.orphaned", "deposit.detected", "deposit.confirmed"]


async def test_without_traces_plain_transfers_are_checked_by_receipt(settings, db, evm, wallets) -> None:
    """For nodes without debug tracing: top-level transfers and token logs still count."""
    from msgspec.structs import replace

    from beanpay.chains.evm.rpc import EvmRpc
    from beanpay.indexer.evm import EvmSource

    payer = wallets(1)
    address = await _watch_order(db, evm)
    plain = await payer.pay_eth(address, 3 * 10**14)
    token = await payer.pay_usdc(address, 1_000)
    height = await payer.w3.eth.block_number
    source = EvmSource(replace(evm, traces=False), EvmRpc(evm.rpc_url))
    try:
        blocks = await source.blocks(list(range(height - 3, height + 1)))
    finally:
        await source.close()
    found = {(d.asset, d.txid, d.amount) for _, b in blocks
             for d in source.deposits(b, {address.lower(): address})}
    assert found == {("ETH", plain, 3 * 10**14), ("tUSDC", token, 1_000)}
