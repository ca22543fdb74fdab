"""Bitcoin payments seen unconfirmed whose transaction is replaced or dropped (BTCPay's `CanRBFPayment`
cases, on btcd regtest, which accepts BIP125 opt-in replacement): a fee bump paying the same output counts
once, a replacement sending the output elsewhere is never credited (before or after it is mined), and a
payment the node's mempool lost is `dropped` after a while, and counts again when broadcast anew and mined."""

from __future__ import annotations

import asyncio
import uuid

import msgspec
from bitcoinlib.keys import Key

from beanpay.config import Settings
from beanpay.deploy.devstack.btc_payer import RegtestWallet
from beanpay.engine.addresses import new_btc_address
from beanpay.engine.addresses import watch as watch_address
from beanpay.indexer import registry
from beanpay.indexer.follower import Follower
from tests.conftest import TestDb, open_test_db
from tests.harness.rpc_faults import RpcFaultProxy

pytest_plugins = ["tests.integration.test_btc_indexer"]


async def _deposits(db: TestDb, address: str) -> dict[str, tuple[str, str | None, int]]:
    rows = await db.fetch("SELECT txid, status, replaced_by, amount FROM deposits WHERE chain = 'btc' AND address = $1",
                          address)
    return {r["txid"]: (r["status"], r["replaced_by"], int(r["amount"])) for r in rows}


async def _live_sum(db: TestDb, address: str) -> int:
    return int(await db.fetchval("SELECT coalesce(sum(amount), 0) FROM deposits WHERE chain = 'btc' AND address = $1 "
                                 "AND status IN ('seen', 'confirming', 'confirmed')", address))


async def _events(db: TestDb, address: str) -> list[str]:
    rows = await db.fetch("SELECT event_type FROM event_outbox WHERE aggregate_id = $1 ORDER BY id", address)
    return [r["event_type"] for r in rows]


async def _sync(follower: Follower, times: int = 2) -> None:
    for _ in range(times):  # a transaction is judged once it has been missing from two scans in a row
        await follower.sync()


async def test_a_fee_bump_paying_the_same_output_counts_once(db, wallet, account, follower) -> None:
    async with db.acquire() as conn, conn.transaction():
        address = (await new_btc_address(conn, account)).address
    first = await wallet.pay(address, 150_000, replaceable=True)
    await follower.sync()
    assert await _deposits(db, address) == {first.txid: ("seen", None, 150_000)}
    bump = await wallet.replace(first, [(address, 150_000)], fee=6_000)
    await follower.sync()  # the bump is in the mempool, spending what the first spent: replaced at once
    assert await _deposits(db, address) == {first.txid: ("replaced", bump, 150_000), bump: ("seen", None, 150_000)}
    assert await _live_sum(db, address) == 150_000  # never 300,000
    await wallet.mine(3)
    await follower.sync()
    assert await _deposits(db, address) == {first.txid: ("replaced", bump, 150_000),
                                            bump: ("confirmed", None, 150_000)}
    assert await _events(db, address) == ["deposit.detected", "deposit.detected", "deposit.replaced",
                                          "deposit.detected", "deposit.confirmed"]


async def test_a_replacement_sending_the_output_elsewhere_is_never_credited(db, wallet, account, follower) -> None:
    async with db.acquire() as conn, conn.transaction():
        address = (await new_btc_address(conn, account)).address
    payment = await wallet.pay(address, 90_000, replaceable=True)
    await follower.sync()
    elsewhere = Key(network="regtest").address(encoding="bech32", script_type="p2wpkh")
    redirect = await wallet.replace(payment, [(elsewhere, 90_000)], fee=6_000)
    await follower.sync()
    assert await _deposits(db, address) == {payment.txid: ("replaced", redirect, 90_000)}
    assert await _live_sum(db, address) == 0
    await wallet.mine(3)  # the double spend confirmed: still nothing for the order
    await _sync(follower)
    assert await _deposits(db, address) == {payment.txid: ("replaced", redirect, 90_000)}
    assert await _events(db, address) == ["deposit.detected", "deposit.replaced"]


async def test_a_payment_the_node_lost_from_its_mempool_is_dropped_and_counts_again_when_mined(
        fresh_settings: Settings, wallet: RegtestWallet) -> None:
    """btcd wipes its regtest chain when it starts (`Removing regression test database`), so a restart cannot
    stand for a node losing its mempool here: a proxy in front of it hides the payment from getrawmempool (the
    inputs stay unspent, as after a restart or an eviction), then shows it again (broadcast anew)."""
    proxy = RpcFaultProxy(fresh_settings.btc_rpc)
    await proxy.start()
    own = msgspec.structs.replace(fresh_settings, btc_rpc_url=proxy.url, btc_drop_after_seconds=1.0,
                                  btc_start_height=None)
    db = await open_test_db(own.dsn)
    follower = Follower(registry.policy(own, "btc"), db, registry.source(own, "btc"))
    try:
        await follower.sync()
        key = Key(network="regtest")
        address = key.address(encoding="bech32", script_type="p2wpkh")
        async with db.acquire() as conn:
            await watch_address(conn, "btc", address, b"\x00\x14" + key.hash160, None, uuid.uuid4())
        payment = await wallet.pay(address, 70_000)
        await follower.sync()
        assert await _deposits(db, address) == {payment.txid: ("seen", None, 70_000)}

        proxy.faults.hidden.add(payment.txid)  # the node lost it
        await _sync(follower)
        assert await _deposits(db, address) == {payment.txid: ("seen", None, 70_000)}  # gone 1 s? not yet
        await asyncio.sleep(1.1)
        await follower.sync()
        assert await _deposits(db, address) == {payment.txid: ("dropped", None, 70_000)}
        assert await _live_sum(db, address) == 0

        proxy.faults.hidden.clear()  # broadcast anew: seen again, then mined, confirmed
        await follower.sync()
        assert await _deposits(db, address) == {payment.txid: ("seen", None, 70_000)}
        await wallet.mine(3)
        await follower.sync()
        assert await _deposits(db, address) == {payment.txid: ("confirmed", None, 70_000)}
        assert await _events(db, address) == ["deposit.detected", "deposit.dropped", "deposit.detected",
                                              "deposit.detected", "deposit.confirmed"]
    finally:
        await follower.source.close()
        await db.close()
        await proxy.stop()
