"""Operations on the Bitcoin index as operators run them: the CLI, kill -9 mid catch-up, and a
second follower taking over from a dead leader."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from beanpay.config import Settings
from beanpay.deploy.devstack.btc_payer import Payment, RegtestWallet
from beanpay.engine.addresses import new_btc_address
from beanpay.indexer import registry
from beanpay.indexer.follower import Follower
from tests.conftest import open_test_db, wait_for

pytest_plugins = ["tests.integration.test_btc_indexer"]
BEANPAY = str(Path(sys.executable).with_name("beanpay"))


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    return {**os.environ, "BEANPAY_DATABASE_URL": settings.dsn, "BEANPAY_LOG_LEVEL": "warning", **extra}


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([BEANPAY, "chain", *args], capture_output=True, text=True, timeout=120,
                          env=_env(settings), check=False)


async def _deposit_set(dsn: str) -> set[tuple[str, int, int, str]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT txid, output_index, amount, status FROM deposits WHERE chain = 'btc'")
        return {(r["txid"], r["output_index"], int(r["amount"]), r["status"]) for r in rows}
    finally:
        await conn.close()


async def _pay_across_blocks(settings: Settings, wallet: RegtestWallet, account, payments: int,  # type: ignore[no-untyped-def]
                             blocks_between: int) -> list[Payment]:
    db = await open_test_db(settings.dsn, min_size=1, max_size=1)
    made = []
    try:
        for i in range(payments):
            async with db.transaction() as conn:
                address = await new_btc_address(conn, account)
            made.append(await wallet.pay(address.address, 20_000 + i))
            await wallet.mine(blocks_between)
    finally:
        await db.close()
    return made


async def test_cli_status_reorg_dry_run_and_replay(settings, db, wallet, account, follower) -> None:
    payments = await _pay_across_blocks(settings, wallet, account, payments=2, blocks_between=2)
    await wallet.mine(3)
    await follower.sync()
    before = await _deposit_set(settings.dsn)
    assert {(p.txid, p.vout, p.amount, "confirmed") for p in payments} <= before

    status = cli(settings, "status", "--chain", "btc", "--json")
    assert status.returncode == 0, status.stderr
    (row,) = json.loads(status.stdout)
    assert row["chain"] == "btc" and row["lag"] == 0 and row["indexed_tip"] == row["node_tip"]
    assert row["watched_addresses"] >= 2 and row["deposits"]["confirmed"] >= 2
    assert "NODE TIP" in cli(settings, "status", "--chain", "btc").stdout

    tip = row["indexed_tip"]
    paid_at = await db.fetchval("SELECT min(block_height) FROM deposits WHERE txid = ANY($1::text[])",
                                [p.txid for p in payments])
    dry = cli(settings, "reorg", "--chain", "btc", "--to-height", str(paid_at - 1), "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)
    assert plan["applied"] is False and {p.txid for p in payments} <= {d["txid"] for d in plan["deposits"]}
    assert await _deposit_set(settings.dsn) == before, "a dry run changes nothing"
    assert (await db.fetchval("SELECT tip_height FROM chain_cursors WHERE chain = 'btc'")) == tip

    done = cli(settings, "reorg", "--chain", "btc", "--to-height", str(paid_at - 1))
    assert done.returncode == 0, done.stderr
    assert "orphaned" in done.stdout
    orphaned = await _deposit_set(settings.dsn)
    assert {(p.txid, p.vout, p.amount, "orphaned") for p in payments} <= orphaned

    replay = cli(settings, "replay", "--chain", "btc", "--from", str(paid_at - 1), "--json")
    assert replay.returncode == 0, replay.stderr
    summary = json.loads(replay.stdout)
    assert summary["blocks_applied"] == tip - (paid_at - 1)
    assert await _deposit_set(settings.dsn) == before, "reorg + replay restores the same deposits"
    second = cli(settings, "replay", "--chain", "btc", "--from", str(paid_at - 1), "--json")
    assert second.returncode == 0, second.stderr
    again = json.loads(second.stdout)
    assert again["deposits_added"] == 0 and again["blocks_applied"] == 0
    assert await _deposit_set(settings.dsn) == before, "a second replay changes nothing"

    bad = cli(settings, "reorg", "--chain", "btc", "--to-height", str(tip + 5))
    assert bad.returncode == 1 and "must be below" in bad.stderr
    unknown = cli(settings, "status", "--chain", "doge")
    assert unknown.returncode == 1


@pytest.mark.timeout(300)
async def test_kill_9_mid_catch_up_loses_and_duplicates_nothing(fresh_settings, wallet, account) -> None:
    settings = fresh_settings
    start = await wallet.rpc.block_count() + 1
    payments = await _pay_across_blocks(settings, wallet, account, payments=12, blocks_between=20)
    await wallet.mine(5)
    node_tip = await wallet.rpc.block_count()
    # one block per transaction over ~245 blocks, so a kill soon after the start lands mid catch-up
    env = _env(settings, BEANPAY_BTC_START_HEIGHT=str(start), BEANPAY_INDEXER_BATCH_BLOCKS="1")
    watcher = await asyncpg.connect(settings.dsn)

    async def indexed() -> int:
        return int(await watcher.fetchval("SELECT coalesce(max(tip_height), 0) FROM chain_cursors") or 0)

    proc = subprocess.Popen([BEANPAY, "index", "--chain", "btc"], env=env)
    try:
        await wait_for(lambda: _past(indexed, start + 5), timeout=60, interval=0.005)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        killed_at = await indexed()
        assert killed_at < node_tip, "the kill must land mid catch-up"
        proc = subprocess.Popen([BEANPAY, "index", "--chain", "btc"], env=env)
        await wait_for(lambda: _past(indexed, node_tip), timeout=120)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        await watcher.close()
    expected = {(p.txid, p.vout, p.amount, "confirmed") for p in payments}
    assert await _deposit_set(settings.dsn) == expected
    conn = await asyncpg.connect(settings.dsn)
    try:
        events = await conn.fetch("SELECT event_type, count(*) AS n FROM event_outbox GROUP BY event_type")
    finally:
        await conn.close()
    assert {r["event_type"]: r["n"] for r in events} == {"deposit.detected": 12, "deposit.confirmed": 12}


async def _past(indexed, height: int) -> bool:  # type: ignore[no-untyped-def]
    return bool(await indexed() >= height)


async def test_second_follower_waits_then_takes_over(fresh_settings, wallet) -> None:
    settings = fresh_settings
    pool = await open_test_db(settings.dsn, min_size=1, max_size=4)
    assert pool is not None
    stops = [asyncio.Event(), asyncio.Event()]
    followers = [Follower(registry.policy(settings, "btc"), pool, registry.source(settings, "btc")) for _ in stops]
    first = asyncio.create_task(followers[0].run(settings.dsn, stops[0]))
    await asyncio.sleep(1.0)
    second = asyncio.create_task(followers[1].run(settings.dsn, stops[1]))
    try:
        await wallet.mine(2)
        node_tip = await wallet.rpc.block_count()
        await wait_for(lambda: _tip_is(pool, node_tip), timeout=30)
        leaders = await pool.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objid = hashtext('btc')::oid")
        assert leaders == 1
        stops[0].set()
        await first  # the leader goes away; the waiting follower must take over
        await wallet.mine(2)
        node_tip = await wallet.rpc.block_count()
        await wait_for(lambda: _tip_is(pool, node_tip), timeout=30)
    finally:
        for s in stops:
            s.set()
        await asyncio.gather(first, second, return_exceptions=True)
        for f in followers:
            await f.source.close()
        await pool.close()


async def _tip_is(pool, height: int) -> bool:  # type: ignore[no-untyped-def]
    return bool(await pool.fetchval("SELECT tip_height FROM chain_cursors WHERE chain = 'btc'") == height)


async def test_replay_finds_payments_to_a_late_watched_address(settings, db, wallet, account, follower) -> None:
    from beanpay.engine import addresses

    late = account.derive(1_000_000 + (await wallet.rpc.block_count()))  # an index nobody allocated
    payment = await wallet.pay(late.address, 33_000)
    await wallet.mine(4)
    await follower.sync()
    height = await wallet.rpc.block_count()
    async with db.acquire() as conn:
        await addresses.watch(conn, "btc", late.address, late.script, None)
    replay = cli(settings, "replay", "--chain", "btc", "--from", str(height - 4), "--to", str(height), "--json")
    assert replay.returncode == 0, replay.stderr
    assert json.loads(replay.stdout)["deposits_added"] == 1
    row = await db.fetchrow("""SELECT status, amount, (SELECT c.tip_height - d.block_height + 1 FROM chain_cursors c
                                                      WHERE c.chain = d.chain) AS confirmations
                               FROM deposits d WHERE txid = $1""", payment.txid)
    assert row["status"] == "confirmed" and row["amount"] == 33_000 and row["confirmations"] == 4
    again = cli(settings, "replay", "--chain", "btc", "--from", str(height - 4), "--to", str(height), "--json")
    assert json.loads(again.stdout)["deposits_added"] == 0


async def test_a_halted_chain_stops_its_indexer_shows_in_status_and_is_released_by_a_rewind(
        fresh_settings, wallet) -> None:
    from beanpay.indexer import store

    settings = fresh_settings
    pool = await open_test_db(settings.dsn, min_size=1, max_size=2)
    try:
        follower = Follower(registry.policy(settings, "btc"), pool, registry.source(settings, "btc"))
        await wallet.mine(2)
        await follower.sync()
        await follower.source.close()
        tip = await pool.fetchval("SELECT tip_height FROM chain_cursors WHERE chain = 'btc'")
        async with pool.transaction() as conn:  # what the follower records when a reorg is deeper than its window
            await store.halt(conn, "btc", "the node's chain differs from every stored header")
    finally:
        await pool.close()
    status = cli(settings, "status", "--chain", "btc")
    assert status.returncode == 3 and "HALTED" in status.stdout
    indexer = await asyncio.to_thread(subprocess.run, [BEANPAY, "index", "--chain", "btc"], capture_output=True,
                                      text=True, timeout=60, env=_env(settings), check=False)
    assert indexer.returncode != 0 and "halted" in indexer.stderr, "the indexer refuses to guess, loudly"
    rewound = cli(settings, "reorg", "--chain", "btc", "--to-height", str(tip - 1), "--json")
    assert rewound.returncode == 0, rewound.stderr
    status = json.loads(cli(settings, "status", "--chain", "btc", "--json").stdout)[0]
    assert status["halted_at"] is None and status["indexed_tip"] == tip - 1
