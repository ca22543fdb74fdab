"""`just bench` (indexer, Bitcoin): catch-up rate of the follower against the raw fetch rate on btcd.

A private btcd (the stack's build, regtest, its own data dir and ports) gets blocks of many real
signed segwit transactions, a share of them paying watched addresses. Then, in the same run:
  raw      the same blocks fetched as the follower fetches them (batched getblockhash + raw
           getblock), with no parsing and no database;
  indexer  the follower catching up over them into a fresh database: parse, match, one Postgres
           transaction per block with its checkpoint and outbox events.
Reported: blocks/s, transactions/s and deposits/s, and indexer/raw (target >= 0.80).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
from bitcoinlib.keys import Key
from bitcoinlib.transactions import Transaction

from beanpay.config import load_settings
from chains.bitcoin.addresses import Bip84Account
from chains.bitcoin.block import parse_block
from chains.bitcoin.rpc import BitcoinRpc
from deploy.devstack.btcd import Btcd, mining_key
from deploy.devstack.databases import create_database, drop_database
from indexer import store
from indexer.bitcoin import BitcoinSource
from indexer.follower import ChainPolicy, Follower

logging.getLogger("bitcoinlib").setLevel(logging.ERROR)
FEE = 1_000  # sats: ~7 sat/vB for a one-input, two-output segwit payment
FANOUT_FEE = 50_000  # the 250-output split is ~8.6 kvB; btcd rate-limits anything under 1 sat/vB


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sign(key: Key, prev: str, vout: int, value: int, outputs: list[tuple[int, str]]) -> str:
    tx = Transaction(network="regtest", witness_type="segwit")
    tx.add_input(prev, vout, keys=key, value=value, witness_type="segwit")
    for amount, address in outputs:
        tx.add_output(amount, address)
    tx.sign()
    return str(tx.raw_hex())


async def send_all(rpc: BitcoinRpc, raws: list[str]) -> None:
    for i in range(0, len(raws), 200):
        await rpc.batch([("sendrawtransaction", (raw,)) for raw in raws[i:i + 200]])


async def fill(rpc: BitcoinRpc, key: Key, address: str, watched: list[str], blocks: int, per_block: int,
               share: float) -> tuple[int, int]:
    """Blocks of `per_block` one-input transactions each; returns (first height, payments to watched)."""
    rng = random.Random(11)
    fanouts = -(-blocks * per_block // 250)  # each mature coinbase is split into 250 coins
    await rpc.call("generate", 100 + fanouts)
    coins: list[tuple[str, int, int]] = []
    raws = []
    for height in range(1, fanouts + 1):
        (raw_block,) = await rpc.raw_blocks(await rpc.block_hashes([height]))
        coinbase = parse_block(raw_block).txs[0]
        each = (coinbase.outputs[0].value - FANOUT_FEE) // 250
        raw = sign(key, coinbase.txid, 0, coinbase.outputs[0].value, [(each, address)] * 250)
        raws.append(raw)
        txid = parse_tx_id(raw)
        coins += [(txid, vout, each) for vout in range(250)]
    await send_all(rpc, raws)
    await rpc.call("generate", 1)
    start = await rpc.block_count() + 1
    hits = 0
    coin_iter = iter(coins)
    for _ in range(blocks):
        raws = []
        for _ in range(per_block):
            prev, vout, value = next(coin_iter)
            hit = rng.random() < share
            hits += hit
            pay = 10_000 + rng.randrange(1000)
            raws.append(sign(key, prev, vout, value,
                             [(pay, rng.choice(watched) if hit else address), (value - pay - FEE, address)]))
        await send_all(rpc, raws)
        await rpc.call("generate", 1)
    return start, hits


def parse_tx_id(raw_hex: str) -> str:
    """The txid of one raw transaction, with the block parser (wrapped in a fake one-tx block)."""
    fake = bytes(80) + b"\x01" + bytes.fromhex(raw_hex)
    return parse_block(fake).txs[0].txid


async def raw_fetch(rpc: BitcoinRpc, start: int, end: int, batch: int) -> float:
    started = time.perf_counter()
    for lo in range(start, end + 1, batch):
        await rpc.raw_blocks(await rpc.block_hashes(list(range(lo, min(lo + batch - 1, end) + 1))))
    return time.perf_counter() - started


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blocks", type=int, default=300)
    parser.add_argument("--per-block", type=int, default=50, help="transactions per block")
    parser.add_argument("--share", type=float, default=0.004, help="share of payments to watched addresses")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    settings = load_settings()
    btcd = Btcd(settings)
    btcd.install()
    wif, address = mining_key(settings.state_path)
    key = Key(wif, network="regtest")
    rpc_port, p2p_port = free_port(), free_port()
    data = Path(tempfile.mkdtemp(prefix="beanpay-btc-bench-"))
    user, password = "bench", uuid.uuid4().hex
    proc = subprocess.Popen(
        [str(btcd.binary), "--regtest", f"--datadir={data / 'data'}", f"--logdir={data / 'logs'}",
         f"--rpcuser={user}", f"--rpcpass={password}", f"--rpclisten=127.0.0.1:{rpc_port}",
         f"--listen=127.0.0.1:{p2p_port}", "--notls", f"--miningaddr={address}", "--rpcmaxclients=100",
         "--blockmaxsize=999000", "--blockmaxweight=3996000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={"HOME": str(data)})
    rpc = BitcoinRpc(f"http://127.0.0.1:{rpc_port}", user, password)
    try:
        for _ in range(100):
            try:
                await rpc.block_count()
                break
            except Exception:
                await asyncio.sleep(0.2)
        account = Bip84Account(settings.btc_account_xpub or "", "regtest")
        watched = [account.derive(i) for i in range(300)]
        t0 = time.perf_counter()
        start, hits = await fill(rpc, key, address, [w.address for w in watched], args.blocks, args.per_block,
                                 args.share)
        end = await rpc.block_count()
        txs = sum(len(parse_block(raw).txs) for raw in await rpc.raw_blocks(
            await rpc.block_hashes(list(range(start, end + 1)))))
        print(f"filled blocks {start}..{end} with {txs} transactions in {time.perf_counter() - t0:.0f}s "
              f"({hits} payments to watched addresses)", file=sys.stderr)

        batch = settings.indexer_batch_blocks
        policy = ChainPolicy(chain="benchbtc", confirmations=3, finality_depth=100, poll_seconds=1.0,
                             batch_blocks=batch, start_height=start)
        raw_runs, idx_runs, deposits = [], [], 0
        for _ in range(args.rounds):
            raw_runs.append(await raw_fetch(rpc, start, end, batch))
            dsn = await create_database(settings.dsn, "beanpay_bench")
            pool = await asyncpg.create_pool(dsn, min_size=2, max_size=4)
            assert pool is not None
            async with pool.acquire() as conn:
                for w in watched:
                    await store.watch(conn, "benchbtc", w.address, w.script, w.index)
            source = BitcoinSource(BitcoinRpc(f"http://127.0.0.1:{rpc_port}", user, password))
            t0 = time.perf_counter()
            await Follower(policy, pool, source).sync(until=end)
            idx_runs.append(time.perf_counter() - t0)
            deposits = await pool.fetchval("SELECT count(*) FROM deposits")
            await source.close()
            await pool.close()
            await drop_database(settings.dsn, dsn)
        assert deposits == hits, f"the index found {deposits} deposits, {hits} were made"
        n = end - start + 1
        raw_t, idx_t = min(raw_runs), min(idx_runs)
        ratio = raw_t / idx_t
        print(f"\nBitcoin catch-up over {n} blocks, {txs} transactions ({deposits} deposits), best of {args.rounds}:")
        print(f"  raw fetch (batched getblockhash + raw getblock, no parsing): {n / raw_t:7.1f} blocks/s, "
              f"{txs / raw_t:8.0f} tx/s")
        print(f"  indexer (fetch, parse, match, txn per batch + events):      {n / idx_t:7.1f} blocks/s, "
              f"{txs / idx_t:8.0f} tx/s, {deposits / idx_t:.0f} deposits/s")
        print(f"  indexer / raw: {ratio:.2f} (target >= 0.80)")
        report = settings.state_path / "bench" / "indexer-btc.json"
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps({"blocks": n, "transactions": txs, "deposits": deposits, "raw_s": raw_runs,
                                      "indexer_s": idx_runs, "ratio": ratio}, indent=2))
        return 0 if ratio >= 0.8 else 1
    finally:
        await rpc.close()
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
