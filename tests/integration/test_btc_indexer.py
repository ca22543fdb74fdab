"""The Bitcoin follower against a real btcd (regtest), paid by real signed segwit transactions."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from beanpay.chains.bitcoin.addresses import Bip84Account
from beanpay.config import Settings
from beanpay.deploy.devstack import stack as devstack
from beanpay.deploy.devstack.btc_payer import RegtestWallet
from beanpay.engine.addresses import new_btc_address
from beanpay.indexer import registry
from beanpay.indexer.follower import Follower
from tests.conftest import open_test_db


@pytest.fixture(scope="session")
async def wallet(settings: Settings) -> AsyncIterator[RegtestWallet]:
    await asyncio.to_thread(devstack.up, settings, ["btcd"])
    w = RegtestWallet(settings)
    await w.ensure_funds()
    yield w
    await w.close()


@pytest.fixture(scope="session")
def account(settings: Settings, wallet: RegtestWallet) -> Bip84Account:
    from beanpay.config import load_settings

    xpub = settings.btc_account_xpub or load_settings().btc_account_xpub
    assert xpub, "the dev stack writes the wallet's xpub when btcd starts"
    return Bip84Account(xpub, "regtest")


@pytest.fixture
async def follower(settings: Settings, db, wallet) -> AsyncIterator[Follower]:  # type: ignore[no-untyped-def]
    f = Follower(registry.policy(settings, "btc"), db, registry.source(settings, "btc"))
    await f.sync()  # start (or catch up) at the node's tip before the test pays anything
    yield f
    await f.source.close()


# confirmations are derived, not stored: the indexed tip minus the deposit's block height, plus one
LIVE = "(SELECT c.tip_height - d.block_height + 1 FROM chain_cursors c WHERE c.chain = d.chain) AS confirmations"


async def _deposit(db, txid: str):  # type: ignore[no-untyped-def]
    return await db.fetchrow(f"SELECT d.*, {LIVE} FROM deposits d WHERE chain = 'btc' AND txid = $1", txid)


async def _events(db, address: str) -> list[str]:  # type: ignore[no-untyped-def]
    rows = await db.fetch("SELECT event_type FROM event_outbox WHERE aggregate_id = $1 ORDER BY id", address)
    return [r["event_type"] for r in rows]


async def test_payment_is_seen_and_confirmed_block_by_block(db, wallet, account, follower) -> None:
    async with db.acquire() as conn, conn.transaction():
        address = await new_btc_address(conn, account)
    payment = await wallet.pay(address.address, 150_000)
    await wallet.mine(1)
    await follower.sync()
    dep = await _deposit(db, payment.txid)
    assert dep["status"] == "confirming" and dep["confirmations"] == 1
    assert dep["amount"] == 150_000 and dep["address"] == address.address
    await wallet.mine(1)
    await follower.sync()
    assert (await _deposit(db, payment.txid))["confirmations"] == 2
    await wallet.mine(1)
    await follower.sync()
    dep = await _deposit(db, payment.txid)
    assert dep["status"] == "confirmed" and dep["confirmations"] == 3
    assert await _events(db, address.address) == ["deposit.detected", "deposit.confirmed"]
    await wallet.mine(2)
    await follower.sync()  # nothing more happens to a confirmed deposit
    assert await _events(db, address.address) == ["deposit.detected", "deposit.confirmed"]


async def test_unwatched_payments_are_ignored_and_sync_is_idempotent(db, wallet, account, follower) -> None:
    stranger = account.derive(2**31 - 1)  # never allocated, so never watched
    payment = await wallet.pay(stranger.address, 10_000)
    await wallet.mine(1)
    assert await follower.sync() == 1
    assert await follower.sync() == 0
    assert await _deposit(db, payment.txid) is None


async def test_reorg_orphans_then_recounts_once(db, wallet, account, follower) -> None:
    async with db.acquire() as conn, conn.transaction():
        address = await new_btc_address(conn, account)
    payment = await wallet.pay(address.address, 77_000)
    (mined,) = await wallet.mine(1)
    await follower.sync()
    first = await _deposit(db, payment.txid)
    assert first["block_hash"] == mined and first["status"] == "confirming"

    await wallet.rpc.call("invalidateblock", mined)  # a real single-node reorg: the block leaves the chain
    await follower.sync()
    orphaned = await _deposit(db, payment.txid)
    assert orphaned["status"] == "orphaned" and orphaned["block_hash"] is None

    new_blocks = await wallet.mine(3)  # the payment is back in the mempool and is mined again
    await follower.sync()
    again = await _deposit(db, payment.txid)
    assert again["id"] == first["id"], "the same deposit, not a second one"
    assert again["block_hash"] in new_blocks and again["block_hash"] != mined
    assert again["status"] == "confirmed"
    count = await db.fetchval("SELECT count(*) FROM deposits WHERE txid = $1", payment.txid)
    assert count == 1
    assert await _events(db, address.address) == [
        "deposit.detected", "deposit.orphaned", "deposit.detected", "deposit.confirmed"]
    cursor = await db.fetchrow("SELECT last_reorg_depth, last_reorg_at FROM chain_cursors WHERE chain = 'btc'")
    assert cursor["last_reorg_depth"] == 1 and cursor["last_reorg_at"] is not None


async def test_address_indexes_are_allocated_without_gaps_or_reuse(settings, account) -> None:
    """Concurrent allocations get distinct, consecutive indexes; a rolled-back one gives its index back."""

    from beanpay.deploy.devstack.databases import create_database, drop_database

    dsn = await create_database(settings.dsn, "beanpay_alloc")
    pool = await open_test_db(dsn, min_size=4, max_size=10)
    try:
        async def allocate(fail: bool) -> int | None:
            try:
                async with pool.acquire() as conn, conn.transaction():
                    address = await new_btc_address(conn, account)
                    if fail:
                        raise RuntimeError("order creation failed after the address was allocated")
                    return address.index
            except RuntimeError:
                return None

        results = await asyncio.gather(*(allocate(fail=i % 7 == 3) for i in range(40)))
        indexes = sorted(r for r in results if r is not None)
        assert indexes == list(range(len(indexes)))
        rows = await pool.fetch("SELECT derivation_index, address FROM watched_addresses WHERE chain = 'btc'")
        assert sorted(r["derivation_index"] for r in rows) == indexes
        assert all(account.derive(r["derivation_index"]).address == r["address"] for r in rows)
    finally:
        await pool.close()
        await drop_database(settings.dsn, dsn)


async def test_unconfirmed_payment_is_seen_then_confirmed(db, wallet, account, follower) -> None:
    async with db.acquire() as conn, conn.transaction():
        address = await new_btc_address(conn, account)
    payment = await wallet.pay(address.address, 55_000)
    await follower.sync()  # nothing mined yet: the follower finds it in the mempool
    seen = await _deposit(db, payment.txid)
    assert seen["status"] == "seen" and seen["block_hash"] is None and seen["amount"] == 55_000
    await follower.sync()
    assert await _events(db, address.address) == ["deposit.detected"], "seen once, reported once"
    await wallet.mine(3)
    await follower.sync()
    done = await _deposit(db, payment.txid)
    assert done["id"] == seen["id"] and done["status"] == "confirmed"
    payloads = await db.fetch("SELECT event_type, payload FROM event_outbox WHERE aggregate_id = $1 ORDER BY id",
                              address.address)
    assert [(p["event_type"], json.loads(p["payload"])["status"]) for p in payloads] == [
        ("deposit.detected", "seen"), ("deposit.detected", "confirming"), ("deposit.confirmed", "confirmed")]
