"""`just drill-region`: lose region A whole under a payment load, promote region B, and measure.

Two regions on this machine, each its own port range: A is the HA stack (`beanpay dev up --ha`), B its
standby (`beanpay dev up --ha --standby`): a Patroni standby cluster streaming from A's primary, its own
Kafka fed by MirrorMaker 2, its own Redis, and passive beanpay processes. Between them a toxiproxy link
adds 20 ms each way. Clients reach the API through the front (region A while it is ready, else B).

The drill, once per replication mode:
- async: A's commits wait for A's own synchronous standby only; B receives WAL as fast as the link allows.
- sync: A's commits also wait for B's standby leader (`synchronous_standby_names = ANY 2 (...)` over A's
  standby and B's nodes), so an acknowledged commit is in both regions; each costs a round trip.
Orders are placed through the front and paid on anvil and btcd, blocks mined every second. Then every
process of region A is killed at once (kill -9). When A's API has failed for `--detect` seconds, B is
promoted (Patroni drops its standby_cluster). Reported: when B's primary took writes, when a client's order
succeeded again, when B's indexers moved past where A's left off (they resume from the checkpoint the copy
holds), the orders A acknowledged that B does not hold (the data lost), and then the drill's invariants
and Kafka read back, over the orders B holds.

Both regions' state is wiped after each run (a promoted B and a dead A cannot simply be restarted: A would
be a second primary). Before it, region B is always wiped and brought up fresh, and region A too unless the
caller says A is healthy and current (`reuse_a`: the failure drill's stack, just healed, which the tests lose
whole next instead of starting another).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import sys
import time
import urllib.request

import aiohttp
import msgspec

from beanpay import db
from beanpay.config import Settings, load_settings
from beanpay.deploy.devstack.ha import stack as ha
from beanpay.deploy.devstack.ha.ports import PG_NODES, Region, region_a, region_b
from beanpay.deploy.devstack.process import read_pid, wait_until
from beanpay.deploy.drills import invariants
from beanpay.deploy.drills.failover import KafkaCheck, kafka_read_back, prepare, until
from beanpay.deploy.drills.invariants import Invariants
from beanpay.deploy.drills.shop import DrillError

MODES = ("async", "sync")
RECOVERY_TARGET_S = 30.0


class RegionReport(msgspec.Struct):
    mode: str  # cross-region replication: async or sync
    orders: int
    paid: int
    p50_ms_before: float  # an order's latency through the front before the cut (the cost of sync)
    detected_s: float  # from the cut to the decision to promote B
    writable_s: float  # from the cut until B's primary took writes (through B's HAProxy)
    replayed_events: int  # published again from B's journal at promotion (what mirroring may have missed)
    recovered_s: float  # from the cut until a client's order succeeded again (through the front)
    indexers_s: float  # from the cut until B's indexers applied a block past A's last checkpoint
    acknowledged_before_cut: int
    lost_orders: list[str]  # acknowledged by A, absent from B: the data lost
    paid_lost: list[str]  # of those, paid on chain
    invariants: Invariants  # over the paid orders B holds
    kafka: KafkaCheck
    met: bool


def wipe(settings: Settings, keep_a: bool = False) -> None:
    """Both regions gone (or B only), state and all (killed: what they hold is thrown away anyway)."""
    for region in (region_b(settings),) if keep_a else (region_b(settings), region_a(settings)):
        kill(settings, region)
        shutil.rmtree(settings.state_path / region.folder, ignore_errors=True)


def replicate(settings: Settings, mode: str) -> None:
    """Set how A replicates to B (A's dynamic config), and wait until B is in that role."""
    a, b = region_a(settings), region_b(settings)
    node = ha.layers(settings, a).postgres[0]
    if mode == "sync":
        names = ", ".join(f'"{r.pg_name(i)}"' for r in (a, b) for i in range(PG_NODES))
        # Patroni leaves synchronous_standby_names to the user when its synchronous mode is off
        node.patch_config({"synchronous_mode": False, "postgresql": {"parameters": {
            "synchronous_standby_names": f"ANY 2 ({names})"}}})
    want = {"sync": {"quorum", "sync"}, "async": {"async"}}[mode]

    def b_streams_as_wanted() -> bool:
        rows = asyncio.run(ha.superuser_query(
            settings, "SELECT coalesce(json_object_agg(application_name, sync_state), '{}')::text "
                      "FROM pg_stat_replication"))
        states = msgspec.json.decode(str(rows), type=dict[str, str])
        return any(states.get(b.pg_name(i)) in want for i in range(PG_NODES))

    wait_until(b_streams_as_wanted, timeout=60, what=f"region b streaming from region a ({mode})")


def kill(settings: Settings, region: Region) -> int:
    """kill -9 every process of a region at once (its PostgreSQL runs in sessions of their own)."""
    every = ha.layers(settings, region)
    pids = [svc.pid() for svc in every.every()]
    pids += [read_pid(n.paths.data / "postmaster.pid", "postgres") for n in every.postgres]
    alive = [p for p in pids if p is not None]
    for pid in alive:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return len(alive)


def _ready(region: Region) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{region.at.api}/readyz", timeout=1) as r:
            return bool(r.status == 200)
    except OSError:
        return False


async def confirm_gone(region: Region, detect: float, within: float = 120) -> None:
    """Return once the region's API has failed its readiness check for `detect` seconds running: the
    operator's (or a watchdog's) confirmation that the region is gone, not just slow, before promoting."""
    deadline, down_since = time.monotonic() + within, None
    while time.monotonic() < deadline:
        if await asyncio.to_thread(_ready, region):
            down_since = None
        elif down_since is None:
            down_since = time.monotonic()
        elif time.monotonic() - down_since >= detect:
            return
        await asyncio.sleep(0.25)
    raise DrillError(f"region {region.name} kept answering for {within:.0f}s")


async def _tip(pool: db.Pool, chain: str) -> int:
    async with pool.acquire() as conn:
        return int(await conn.fetchval(invariants.SQL.indexed_tip, chain) or 0)


async def drill(settings: Settings, mode: str, rate: float, before: float, detect: float,
                after: float, btc_every: int = 5) -> RegionReport:
    a, b = region_a(settings), region_b(settings)
    chain = (settings.evm_chains or [])[0]
    load, merchant = await prepare(settings, f"http://127.0.0.1:{b.at.front}", rate, btc_every)
    shop, payer = load.shop, load.payer
    stop = asyncio.Event()
    pool_a = await db.create_pool(ha.ha_settings(settings, a))
    try:
        async with aiohttp.ClientSession() as http:
            await shop.seed(http, merchant)
        limit = int(rate * (before + after + 300))
        tasks = [asyncio.create_task(load.run(stop, limit)), asyncio.create_task(load.pay(stop)),
                 asyncio.create_task(load.mine(stop))]
        await asyncio.sleep(before)
        tip_at_cut = await _tip(pool_a, chain.name)
        await pool_a.close()
        t0 = time.monotonic()
        await asyncio.to_thread(kill, settings, a)  # region a is cut off
        gone = time.monotonic()  # what succeeds from here on was served by region b
        acknowledged = [o for o, at in zip(load.orders, load.acked_at, strict=True) if at <= t0]
        before_cut = [x.ended - x.started for x in load.attempts if x.ok and x.ended <= t0]
        await confirm_gone(a, detect)
        detected = time.monotonic() - t0
        replayed = await asyncio.to_thread(ha.promote, settings)
        writable = time.monotonic() - t0
        pool = await db.create_pool(ha.ha_settings(settings, b))
        try:
            async def served_again() -> bool:
                return any(x.ok and x.started >= gone for x in load.attempts)

            await until("an order to succeed through the front", served_again, 120)
            recovered = min(x.ended for x in load.attempts if x.ok and x.started >= gone) - t0

            async def indexed_past_a() -> bool:
                return await _tip(pool, chain.name) > tip_at_cut

            await until("region b's indexers to pass region a's checkpoint", indexed_past_a, 120)
            indexers = time.monotonic() - t0
            await asyncio.sleep(after)
            stop.set()
            await asyncio.gather(*tasks[:2])
            async with pool.acquire() as conn:
                held_orders = await invariants.known(conn, load.orders)
            lost = [o.id for o in acknowledged if o.id not in held_orders]
            paid_held = [o for o in load.paid if o.id in held_orders]
            miner_stop = asyncio.Event()
            miner = asyncio.create_task(load.mine(miner_stop))
            try:
                async def settled() -> bool:
                    async with pool.acquire() as conn:
                        held = await invariants.check(conn, paid_held, merchant)
                    return not held.lost and not held.webhooks_missing

                with contextlib.suppress(DrillError):  # what never settles is reported below
                    await until("every paid order to confirm and be announced", settled, 180)
                async with pool.acquire() as conn:
                    held = await invariants.check(conn, paid_held, merchant)
            finally:
                miner_stop.set()
                await miner
        finally:
            await pool.close()
        servers = ha.ha_settings(settings, b).kafka_servers
        kafka = await kafka_read_back(servers, paid_held, merchant)
        paid_ids = {o.id for o in load.paid}
        met = (recovered < RECOVERY_TARGET_S and held.hold and not kafka.missing and not kafka.reordered
               and not kafka.undelivered and (mode != "sync" or not lost))
        return RegionReport(mode, len(load.orders), len(load.paid), round(_median(before_cut) * 1000, 1),
                            round(detected, 2), round(writable, 2), replayed, round(recovered, 2),
                            round(indexers, 2),
                            len(acknowledged), lost, [i for i in lost if i in paid_ids], held, kafka, met)
    finally:
        stop.set()
        await merchant.stop()
        await payer.close()
        with contextlib.suppress(Exception):  # already closed unless the drill failed before the cut
            async with asyncio.timeout(5):
                await pool_a.close()


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else 0.0


def run_mode(settings: Settings, mode: str, rate: float, before: float, detect: float, after: float,
             reuse_a: bool = False) -> RegionReport:
    wipe(settings, keep_a=reuse_a and _ready(region_a(settings)))
    try:
        ha.up(settings)  # a no-op for each part of a reused region A that is healthy
        ha.up(settings, region=region_b(settings))
        replicate(settings, mode)
        return asyncio.run(drill(settings, mode, rate, before, detect, after))
    finally:
        wipe(settings)


def report_lines(r: RegionReport) -> list[str]:
    i, k = r.invariants, r.kafka
    return [
        f"[{r.mode}] orders {r.orders}, paid on chain {r.paid}; an order took {r.p50_ms_before} ms (p50) before "
        f"the cut",
        f"[{r.mode}] region a cut: promoted after {r.detected_s} s, writable in b at {r.writable_s} s "
        f"({r.replayed_events} events queued again), orders served again at {r.recovered_s} s, indexers past "
        f"a's checkpoint at {r.indexers_s} s",
        f"[{r.mode}] data lost: {len(r.lost_orders)} of {r.acknowledged_before_cut} orders a acknowledged "
        f"({len(r.paid_lost)} of them paid)",
        f"[{r.mode}] invariants over b's orders: confirmed {i.confirmed} of {i.paid}, lost {len(i.lost)}, "
        f"credited twice {len(i.credited_twice)}, credited wrong {len(i.credited_wrong)}, unbalanced groups "
        f"{i.unbalanced_groups}, webhooks missing {len(i.webhooks_missing)}, doubled {len(i.webhooks_doubled)}",
        f"[{r.mode}] kafka in b: {k.events} events of {k.orders} orders, missing {len(k.missing)}, duplicated "
        f"{k.duplicated}, reordered {len(k.reordered)}, not delivered {len(k.undelivered)}",
        f"[{r.mode}] " + ("passed" if r.met else "FAILED"),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="just drill-region", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=[*MODES, "both"], default="both", help="cross-region replication")
    parser.add_argument("--rate", type=float, default=4.0, help="orders per second (default 4)")
    parser.add_argument("--before", type=float, default=20.0, help="seconds of load before region a is cut")
    parser.add_argument("--detect", type=float, default=5.0,
                        help="seconds region a's API must fail before b is promoted (default 5)")
    parser.add_argument("--after", type=float, default=15.0, help="seconds of load in region b afterwards")
    parser.add_argument("--json", action="store_true", help="print the reports as JSON")
    args = parser.parse_args(argv)
    settings = load_settings()
    reports = []
    for mode in MODES if args.mode == "both" else (args.mode,):
        report = run_mode(settings, mode, args.rate, args.before, args.detect, args.after)
        reports.append(report)
        if not args.json:
            print("\n".join(report_lines(report)), flush=True)
    if args.json:
        print(msgspec.json.encode(reports).decode())
    return 0 if all(r.met for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
