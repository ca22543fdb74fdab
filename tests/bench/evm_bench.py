"""`just bench` (indexer, EVM): catch-up rate of the follower against the raw fetch rate of the same blocks.

A private anvil (the stack's pinned binary, on a free port) is filled with a few thousand blocks
carrying ETH and test-USDC transfers, a share of them to watched addresses. Then, in the same run:
  raw      the same block range fetched from the node exactly as the follower fetches it (batched
           blocks, logs and call traces), with no processing and no database;
  indexer  the follower catching up over that range into a fresh database: parse, match, one
           Postgres transaction per block with its checkpoint and outbox events.
  provider the follower again, through tests/harness/rpc_faults.py in another process playing a hosted
           provider (eth_getLogs capped at 2,000 blocks, every 20th request answered 429).
Reported: blocks/s and deposits/s, indexer/raw (target >= 0.80) and provider/indexer (target >= 0.70).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import subprocess
import sys
import time

import uvloop

from beanpay.chains.evm.rpc import EvmRpc
from beanpay.config import EvmChainConfig, TokenConfig, load_settings
from beanpay.deploy.devstack import evm_contracts
from beanpay.deploy.devstack.anvil import CHAIN_ID, Anvil
from beanpay.deploy.devstack.databases import create_database, drop_database
from beanpay.engine import addresses
from beanpay.indexer.evm import EvmSource
from beanpay.indexer.follower import ChainPolicy, Follower
from tests.bench.local import free_port, until_answering
from tests.conftest import open_test_db

SENDERS = [  # anvil dev accounts 1..4, unlocked on anvil, so eth_sendTransaction needs no signing here
    "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
    "0x90F79bf6EB2c4f870365E785982E1f101E93b906", "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65",
]
TRANSFER = "0xa9059cbb"  # transfer(address,uint256)
MINT = "0x40c10f19"  # mint(address,uint256)


def _word(value: int | str) -> str:
    if isinstance(value, str):
        return value.lower().removeprefix("0x").rjust(64, "0")
    return hex(value)[2:].rjust(64, "0")


async def fill(rpc: EvmRpc, token: str, watched: list[str], blocks: int, per_block: int, share: float) -> int:
    """`blocks` blocks of `per_block` transfers each (ETH and test-USDC alternating), each to a watched
    address with odds `share`. Automine is off while filling, so every block holds exactly its batch."""
    rng = random.Random(7)
    for s in SENDERS:
        await rpc.call("eth_sendTransaction", {"from": s, "to": token, "data": MINT + _word(s) + _word(10**15)})
    nonces = {s: int(await rpc.call("eth_getTransactionCount", s, "pending"), 16) for s in SENDERS}
    await rpc.call("evm_setAutomine", False)
    to_watched, i = 0, 0
    try:
        for _ in range(blocks):
            calls = []
            for _ in range(per_block):
                sender = SENDERS[i % len(SENDERS)]
                hit = rng.random() < share
                to_watched += hit
                to = rng.choice(watched) if hit else "0x" + rng.randbytes(20).hex()
                if i % 2:
                    tx = {"from": sender, "to": to, "value": hex(10**12 + i), "gas": "0x5208"}
                else:
                    tx = {"from": sender, "to": token, "data": TRANSFER + _word(to) + _word(1_000 + i),
                          "gas": hex(80_000)}
                tx["nonce"] = hex(nonces[sender])
                nonces[sender] += 1
                calls.append(("eth_sendTransaction", (tx,)))
                i += 1
            await rpc.batch(calls)
            await rpc.call("evm_mine")
    finally:
        await rpc.call("evm_setAutomine", True)
    return to_watched


async def raw_fetch(source: EvmSource, start: int, end: int, batch: int) -> float:
    started = time.perf_counter()
    for lo in range(start, end + 1, batch):
        await source.blocks(list(range(lo, min(lo + batch - 1, end) + 1)))
    return time.perf_counter() - started


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blocks", type=int, default=3000)
    parser.add_argument("--per-block", type=int, default=4, help="transfers per block")
    parser.add_argument("--share", type=float, default=0.2, help="share of transfers to watched addresses")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-traces", action="store_true", help="ETH by receipts instead of call traces")
    args = parser.parse_args()

    settings = load_settings()
    anvil = Anvil(settings)
    anvil.install()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([str(anvil.binary), "--host", "127.0.0.1", "--port", str(port), "--chain-id",
                             str(CHAIN_ID), "--steps-tracing", "--silent"])
    try:
        rpc = EvmRpc(url)
        await until_answering(rpc.block_number)
        record = await asyncio.to_thread(evm_contracts.deploy, url, CHAIN_ID, settings.state_path / "bench")
        token = record["tokens"][0]["address"]
        chain = EvmChainConfig(name="benchevm", chain_id=CHAIN_ID, rpc_url=url, confirmations=3,
                               tokens=[TokenConfig("tUSDC", token, 6)], traces=not args.no_traces)
        watched = ["0x" + random.Random(i).randbytes(20).hex() for i in range(200)]
        start = await rpc.block_number() + 1
        t0 = time.perf_counter()
        hits = await fill(rpc, token, watched, args.blocks, args.per_block, args.share)
        end = await rpc.block_number()
        print(f"filled blocks {start}..{end} in {time.perf_counter() - t0:.1f}s "
              f"({hits} transfers to watched addresses)", file=sys.stderr)

        policy = ChainPolicy(chain="benchevm", confirmations=3, finality_depth=64, poll_seconds=1.0,
                             batch_blocks=settings.indexer_batch_blocks, start_height=start)
        proxy_port = free_port()  # a provider capping eth_getLogs at 2,000 blocks and answering every 20th with 429
        proxy = subprocess.Popen([sys.executable, "-m", "tests.harness.rpc_faults", "--upstream", url, "--port",
                                  str(proxy_port), "--range-cap", "2000", "--rate-limit-every", "20"])
        proxied = f"http://127.0.0.1:{proxy_port}"
        probe = EvmRpc(proxied)
        await until_answering(probe.block_number)
        await probe.close()

        async def index_once(node: str) -> tuple[float, int]:
            dsn = await create_database(settings.dsn, "beanpay_bench")
            pool = await open_test_db(dsn, min_size=2, max_size=4)  # the service's pool, with raw SQL for counting
            async with pool.acquire() as conn:
                for w in watched:
                    await addresses.watch(conn, "benchevm", w, None, None)
            source = EvmSource(chain, EvmRpc(node))
            follower = Follower(policy, pool, source)
            t0 = time.perf_counter()
            applied = await follower.sync(until=end)
            took = time.perf_counter() - t0
            found = await pool.fetchval("SELECT count(*) FROM deposits")
            assert applied >= end - start, (applied, start, end)
            await source.close()
            await pool.close()
            await drop_database(settings.dsn, dsn)
            return took, found

        raw_runs, idx_runs, proxy_runs, deposits = [], [], [], 0
        try:
            for _ in range(args.rounds):
                source = EvmSource(chain, EvmRpc(url))
                raw_runs.append(await raw_fetch(source, start, end, policy.batch_blocks))
                await source.close()
                took, deposits = await index_once(url)
                idx_runs.append(took)
                took, through_proxy = await index_once(proxied)
                proxy_runs.append(took)
                assert through_proxy == deposits, f"through the provider {through_proxy} deposits, {deposits} direct"
        finally:
            proxy.terminate()
            proxy.wait(timeout=10)
        assert deposits == hits or args.no_traces, f"the index found {deposits} deposits, {hits} were made"
        n = end - start + 1
        raw_t, idx_t = min(raw_runs), min(idx_runs)
        ratio = raw_t / idx_t
        print(f"\nEVM catch-up over {n} blocks ({deposits} deposits), best of {args.rounds} rounds:")
        print(f"  raw fetch (batched blocks + logs + traces, no processing): {n / raw_t:8.0f} blocks/s")
        print(f"  indexer (fetch, parse, match, txn per batch + events):    {n / idx_t:8.0f} blocks/s, "
              f"{deposits / idx_t:.0f} deposits/s")
        print(f"  indexer / raw: {ratio:.2f} (target >= 0.80)")
        provider_ratio = idx_t / min(proxy_runs)
        print(f"  indexer through a capped, throttling provider (2,000-block getLogs cap, a 429 every 20 requests): "
              f"{n / min(proxy_runs):8.0f} blocks/s; / indexer straight from the node: {provider_ratio:.2f} "
              "(target >= 0.70)")
        report = settings.state_path / "bench" / "indexer-evm.json"
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps({"blocks": n, "deposits": deposits, "raw_s": raw_runs, "indexer_s": idx_runs,
                                      "ratio": ratio, "provider_s": proxy_runs,
                                      "provider_ratio": provider_ratio}, indent=2))
        await rpc.close()
        return 0 if ratio >= 0.8 and provider_ratio >= 0.7 else 1
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(uvloop.run(main()))  # as `beanpay index` runs the follower (beanpay/services.py)
