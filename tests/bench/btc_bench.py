"""`just bench` (indexer, Bitcoin): catch-up rate of the follower against the raw fetch rate on btcd.

A private btcd (the stack's build, regtest, its own data dir and ports) gets 1,000 blocks of 200 real
signed segwit payments each (~45 kB per block), 0.1% of them paying watched addresses (about one
block in five carries one). Then, in the same run:
  raw      the same blocks fetched as the follower fetches them (batched getblockhash + raw
           getblock), with no parsing and no database;
  indexer  the follower catching up over them into a fresh database: parse, match, one Postgres
           transaction per block with its checkpoint and outbox events.
Reported: blocks/s, transactions/s and deposits/s, and indexer/raw (target >= 0.80).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import uvloop
from bitcoinlib.keys import Key

from beanpay.chains.bitcoin.addresses import Bip84Account
from beanpay.chains.bitcoin.block import parse_block
from beanpay.chains.bitcoin.rpc import BitcoinRpc
from beanpay.config import load_settings
from beanpay.deploy.devstack.btcd import Btcd, mining_key
from beanpay.deploy.devstack.databases import create_database, drop_database
from beanpay.engine import addresses
from beanpay.indexer.bitcoin import BitcoinSource
from beanpay.indexer.follower import ChainPolicy, Follower
from tests.bench.local import free_port, until_answering
from tests.bench.p2wpkh import P2wpkhSigner
from tests.conftest import open_test_db

logging.getLogger("bitcoinlib").setLevel(logging.ERROR)
FEE = 1_000  # sats: ~7 sat/vB for a one-input, two-output segwit payment
COINS_PER_SPLIT = 100  # a mature coinbase (50 BTC) split in 100 coins: each pays thousands of payments
SPLIT_FEE = 50_000


async def send_all(rpc: BitcoinRpc, raws: list[bytes]) -> None:
    for i in range(0, len(raws), 200):
        await rpc.batch([("sendrawtransaction", (raw.hex(),)) for raw in raws[i:i + 200]])


async def fill(rpc: BitcoinRpc, key: Key, watched: list[bytes], blocks: int, per_block: int,
               share: float) -> tuple[int, int]:
    """Blocks of `per_block` one-input payments each, a `share` of them to watched scripts; each coin's
    change pays the next block's payment from it. Returns (first height, payments to watched scripts)."""
    rng = random.Random(11)
    signer = P2wpkhSigner(key.secret.to_bytes(32, "big"), key.hash160)
    ours = b"\x00\x14" + key.hash160
    splits = -(-per_block // COINS_PER_SPLIT)
    await rpc.call("generate", 100 + splits)
    coins: list[tuple[str, int, int]] = []
    raws = []
    for height in range(1, splits + 1):
        (raw_block,) = await rpc.raw_blocks(await rpc.block_hashes([height]))
        coinbase = parse_block(raw_block).txs[0]
        each = (coinbase.outputs[0].value - SPLIT_FEE) // COINS_PER_SPLIT
        split = signer.spend(coinbase.txid, 0, coinbase.outputs[0].value, [(each, ours)] * COINS_PER_SPLIT)
        raws.append(split.raw)
        coins += [(split.txid, vout, each) for vout in range(COINS_PER_SPLIT)]
    await send_all(rpc, raws)
    await rpc.call("generate", 1)
    coins = coins[:per_block]
    start = await rpc.block_count() + 1
    hits = 0
    for _ in range(blocks):
        raws = []
        for i, (prev, vout, value) in enumerate(coins):
            hit = rng.random() < share
            hits += hit
            pay = 10_000 + rng.randrange(1000)
            change = value - pay - FEE
            tx = signer.spend(prev, vout, value, [(pay, rng.choice(watched) if hit else ours), (change, ours)])
            raws.append(tx.raw)
            coins[i] = (tx.txid, 1, change)
        await send_all(rpc, raws)
        await rpc.call("generate", 1)
    return start, hits


async def raw_fetch(rpc: BitcoinRpc, start: int, end: int, batch: int) -> float:
    started = time.perf_counter()
    for lo in range(start, end + 1, batch):
        await rpc.raw_blocks(await rpc.block_hashes(list(range(lo, min(lo + batch - 1, end) + 1))))
    return time.perf_counter() - started


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blocks", type=int, default=1000)
    parser.add_argument("--per-block", type=int, default=200, help="transactions per block")
    parser.add_argument("--share", type=float, default=0.001, help="share of payments to watched addresses")
    parser.add_argument("--rounds", type=int, default=3)
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
        await until_answering(rpc.block_count, pause=0.2)
        account = Bip84Account(settings.btc_account_xpub or "", "regtest")
        watched = [account.derive(i) for i in range(300)]
        t0 = time.perf_counter()
        start, hits = await fill(rpc, key, [w.script for w in watched], args.blocks, args.per_block,
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
            pool = await open_test_db(dsn, min_size=2, max_size=4)  # the service's pool, with raw SQL for counting
            async with pool.acquire() as conn:
                for w in watched:
                    await addresses.watch(conn, "benchbtc", w.address, w.script, w.index)
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
    sys.exit(uvloop.run(main()))  # as `beanpay index` runs the follower (beanpay/services.py)
