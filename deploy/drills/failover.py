"""`just drill`: kill -9 every part of the highly available stack in turn, under a steady payment load.

The load: customers place orders over HTTP through HAProxy at a steady rate (each with an Idempotency-Key,
retried with the same key when it fails, as a client should), each is paid with a real transaction on
anvil (tUSDC) or btcd (every fifth, BTC), and blocks are mined every second.

The faults, one after another, each healed before the next: the PostgreSQL primary (its Patroni and its
postmaster: the node is gone, Patroni promotes the synchronous standby), one Kafka broker, the Redis
primary (Sentinel promotes the replica), one etcd member, then one process of each beanpay service.

Per fault: the requests that failed and the window they failed in, and the p99 latency of the requests
made while the fault lasted. At the end, with the load stopped and every payment settled: the invariants
(nothing lost, nothing credited twice, the ledger balanced and equal to what was paid on chain, every
order event delivered to the merchant's webhook), and Kafka read back with kcat (an independent client):
every order's events there once each, in order. Exits non-zero when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import msgspec

from beanpay import db
from beanpay.config import Settings, load_settings
from beanpay.deploy.devstack.btc_payer import RegtestWallet
from beanpay.deploy.devstack.ha import stack as ha
from beanpay.deploy.devstack.ha.patroni import PatroniNode
from beanpay.deploy.devstack.ha.ports import ports
from beanpay.deploy.devstack.process import read_pid, wait_until
from beanpay.deploy.drills import invariants
from beanpay.deploy.drills.invariants import Invariants
from beanpay.deploy.drills.shop import DrillError, Merchant, Payer, Placed, Shop, placed
from beanpay.deploy.endpoint import free_port
from beanpay.events import catalog

CLIENT_TIMEOUT = 10.0
RETRY_PAUSE = 0.5
BEANPAY_TARGETS = ["api", "relay", "engine", "webhooks", "notify", "index-eth", "index-btc", "lightning"]


@dataclass
class Attempt:
    started: float
    ended: float
    ok: bool
    status: int | str  # the HTTP status, or the error's name


@dataclass
class Load:
    """Orders at `rate` per second until stopped, each retried (same key) until it is made."""

    shop: Shop
    payer: Payer
    rate: float
    btc_every: int
    attempts: list[Attempt] = field(default_factory=list)
    orders: list[Placed] = field(default_factory=list)
    acked_at: list[float] = field(default_factory=list)  # when each order's 201 arrived (monotonic)
    paid: list[Placed] = field(default_factory=list)
    unpaid: asyncio.Queue[Placed] = field(default_factory=asyncio.Queue)

    async def place(self, http: aiohttp.ClientSession, n: int) -> None:
        key, who = uuid.uuid4().hex, self.shop.customer()
        body = self.shop.order_body("btc" if self.btc_every and n % self.btc_every == 0 else "eth")
        for _ in range(200):  # bounded: a fault heals in seconds
            started = time.monotonic()
            try:
                async with http.post(self.shop.base + "/v1/orders", json=body,
                                     headers={**who, "Idempotency-Key": key}) as resp:
                    made = await resp.json() if resp.status == 201 else None
                    self.attempts.append(Attempt(started, time.monotonic(), made is not None, resp.status))
            except (aiohttp.ClientError, TimeoutError) as exc:
                self.attempts.append(Attempt(started, time.monotonic(), False, type(exc).__name__))
                made = None
            if made is not None:
                order = placed(made)
                self.orders.append(order)
                self.acked_at.append(time.monotonic())
                await self.unpaid.put(order)
                return
            await asyncio.sleep(RETRY_PAUSE)
        raise DrillError("an order could not be placed in 200 attempts")

    async def run(self, stop: asyncio.Event, limit: int) -> None:
        timeout = aiohttp.ClientTimeout(total=CLIENT_TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=200)) as http:
            tasks: set[asyncio.Task[None]] = set()
            n = 0
            while not stop.is_set() and n < limit:
                task = asyncio.create_task(self.place(http, n))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                n += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1 / self.rate)
            if tasks:
                await asyncio.gather(*tasks)

    async def pay(self, stop: asyncio.Event) -> None:
        while not (stop.is_set() and self.unpaid.empty()):
            try:
                order = await asyncio.wait_for(self.unpaid.get(), 0.5)
            except TimeoutError:
                continue
            for _ in range(60):  # a node answers again within seconds
                try:
                    await self.payer.pay(order)
                    break
                except Exception:
                    await asyncio.sleep(1)
            else:
                raise DrillError(f"order {order.id} could not be paid")
            self.paid.append(order)

    async def mine(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(Exception):
                await self.payer.mine(1)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)


class FaultReport(msgspec.Struct):
    fault: str
    target: str
    failed_requests: int
    failures: dict[str, int]  # what the failed ones got: an HTTP status, or the client's error
    failed_window_s: float  # from the fault to the last failed request's end (0: none failed)
    requests: int
    p99_ms: float  # of the requests started while the fault lasted
    recovered_s: float  # until what was killed (or its replacement) was healthy again
    target_failed_requests: int | None  # the most the target allows (None: losing nothing is the target)
    unavailable_target_s: float | None
    met: bool


class KafkaCheck(msgspec.Struct):
    orders: int
    events: int
    missing: list[str]  # orders without their order.created or order.confirmed on Kafka
    duplicated: int  # event ids published more than once (at least once: allowed, consumers dedupe)
    reordered: list[str]  # orders whose events are out of order on their key
    undelivered: list[str]  # orders with an event on Kafka the merchant was not sent


class DrillReport(msgspec.Struct):
    orders: int
    paid: int
    faults: list[FaultReport]
    invariants: Invariants
    kafka: KafkaCheck
    met: bool


@dataclass
class Fault:
    name: str
    inject: Callable[[], str]  # kills something; says what
    heal: Callable[[], None]  # starts it again (it rejoins as whatever the cluster now needs)
    healthy: Callable[[], bool]
    max_failed: int | None = None
    max_unavailable_s: float | None = None
    observe_at_least: float = 0.0  # a fault that takes this long to fail over is watched at least this long


def _kill_group(pid: int | None) -> None:
    if pid is None:
        raise DrillError("nothing to kill: it is not running")
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def faults(settings: Settings) -> list[Fault]:
    layers = ha.layers(settings)
    every: list[Fault] = []

    healing: list[Callable[[], None]] = []

    def heal() -> None:
        while healing:
            healing.pop()()

    def primary_node() -> PatroniNode:
        (node,) = [n for n in layers.postgres if n.state().get("role") == "primary"]
        return node

    def pg_primary() -> str:
        # PostgreSQL dies; its Patroni sees the crash and gives up the leader key at once, the synchronous
        # standby is promoted, and Patroni rejoins the old primary as a standby (pg_rewind): nothing to heal
        node = primary_node()
        _kill_group(read_pid(node.paths.data / "postmaster.pid", "postgres"))
        return node.name

    def pg_node() -> str:
        # the whole node: Patroni too, so its leader key must expire (ttl) before the standby takes over
        node = primary_node()
        postmaster = read_pid(node.paths.data / "postmaster.pid", "postgres")
        _kill_group(node.pid())
        _kill_group(postmaster)  # PostgreSQL runs in a session of its own
        healing.append(node.start)
        return node.name

    def pg_healthy() -> bool:
        return sorted(layers.postgres[0].cluster().values()) == ["leader", "sync_standby"]

    every.append(Fault("postgres-primary", pg_primary, heal, pg_healthy, max_unavailable_s=15.0))
    every.append(Fault("postgres-node", pg_node, heal, pg_healthy, max_unavailable_s=30.0, observe_at_least=35.0))

    def kafka_broker() -> str:
        node = layers.kafka[1]
        _kill_group(node.pid())
        healing.append(node.launch)
        return node.name

    every.append(Fault("kafka-broker", kafka_broker, heal, lambda: all(k.healthy() for k in layers.kafka)))

    def redis_primary() -> str:
        (node,) = [r for r in layers.redis if r.role() == "master"]
        _kill_group(node.pid())
        healing.append(node.start)
        return node.name

    def redis_healthy() -> bool:
        primaries = {s.primary() for s in layers.sentinels}
        return all(r.healthy() for r in layers.redis) and len(primaries) == 1 and None not in primaries

    every.append(Fault("redis-primary", redis_primary, heal, redis_healthy))

    def etcd_member() -> str:
        node = layers.etcd[2]
        _kill_group(node.pid())
        healing.append(node.start)
        return node.name

    every.append(Fault("etcd-member", etcd_member, heal, lambda: all(e.healthy() for e in layers.etcd)))

    for service in BEANPAY_TARGETS:
        process = next(p for p in layers.beanpay if p.service == service)

        def kill(process: ha.BeanpayProcess = process) -> str:
            _kill_group(process.pid())
            healing.append(process.start)
            return process.name

        every.append(Fault(f"beanpay-{service}", kill, heal, process.healthy, max_failed=0))

    apis = [p for p in layers.beanpay if p.service == "api"]

    def rolling_restart() -> str:
        # a deploy: each API process in turn gets SIGTERM (it fails /readyz, serves on while HAProxy stops
        # sending to it, then finishes what it holds), and is started again, ready, before the next
        for process in apis:
            process.stop()
            process.start()
            wait_until(process.healthy, timeout=60, what=process.name)
        return "+".join(p.name for p in apis)

    every.append(Fault("rolling-restart-api", rolling_restart, heal, lambda: all(p.healthy() for p in apis),
                       max_failed=0))
    return every


def _p99(values: list[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


async def _inject(fault: Fault, load: Load, observe: float) -> FaultReport:
    observe = max(observe, fault.observe_at_least)
    t0 = time.monotonic()
    target = await asyncio.to_thread(fault.inject)
    await asyncio.sleep(observe)
    await asyncio.to_thread(fault.heal)
    await asyncio.to_thread(wait_until, fault.healthy, timeout=180, what=f"{target} after {fault.name}")
    recovered = time.monotonic() - t0
    during = [a for a in load.attempts if t0 <= a.started <= t0 + observe]
    failed = [a for a in load.attempts if a.ended >= t0 and not a.ok and a.started <= t0 + observe]
    window = max((a.ended - t0 for a in failed), default=0.0)
    met = ((fault.max_failed is None or len(failed) <= fault.max_failed)
           and (fault.max_unavailable_s is None or window < fault.max_unavailable_s))
    return FaultReport(fault.name, target, len(failed), dict(Counter(str(a.status) for a in failed)),
                       round(window, 2), len(during),
                       round(_p99([a.ended - a.started for a in during if a.ok]) * 1000, 1), round(recovered, 1),
                       fault.max_failed, fault.max_unavailable_s, met)


def read_kafka(servers: str, topic: str, keys: set[str]) -> list[dict[str, Any]]:
    """Every message of `topic` with one of `keys`, in offset order, read with kcat."""
    out = subprocess.run(["kcat", "-b", servers, "-C", "-t", topic, "-o", "beginning", "-e", "-J", "-q"],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    found = [json.loads(line) for line in out.split("\n") if line.strip()]
    mine = sorted((m for m in found if m.get("key") in keys), key=lambda m: (m["partition"], m["offset"]))
    for m in mine:
        m["envelope"] = json.loads(m["payload"])
    return mine


def check_kafka(servers: str, orders: list[Placed], merchant: Merchant) -> KafkaCheck:
    keys = {o.id for o in orders}
    messages = read_kafka(servers, catalog.ORDERS, keys) + read_kafka(servers, catalog.PAYMENTS, keys)
    per: dict[str, list[dict[str, Any]]] = {}
    ids = [m["envelope"]["event_id"] for m in messages]
    for m in messages:  # as a consumer sees them: a duplicate of an event it has is skipped
        if m["envelope"]["event_id"] not in {e["event_id"] for e in per.get(m["key"], [])}:
            per.setdefault(m["key"], []).append(m["envelope"])
    missing, reordered, undelivered = [], [], []
    for key in sorted(keys):
        events = per.get(key, [])
        orders_topic = [e["type"] for e in events if e["type"].startswith("order.")]
        if "order.created" not in orders_topic or "order.confirmed" not in orders_topic:
            missing.append(key)
        elif orders_topic.index("order.created") > orders_topic.index("order.confirmed"):
            reordered.append(key)
        times = [e["occurred_at"] for e in events if e["type"].startswith("order.")]
        if times != sorted(times):
            reordered.append(key)
        told = {m for m, _ in merchant.events.get(key, [])}
        if not {e["event_id"] for e in events} <= told:
            undelivered.append(key)
    return KafkaCheck(len(keys), len(messages), missing, len(ids) - len(set(ids)), sorted(set(reordered)),
                      undelivered)


async def kafka_read_back(servers: str, paid: list[Placed], merchant: Merchant, within: float = 60) -> KafkaCheck:
    """Kafka read back, again (bounded) while events are still on their way there (the relay's last batch) or
    to the merchant (webhooks retried after a fault): what is still missing after `within` seconds is lost."""
    kafka = await asyncio.to_thread(check_kafka, servers, paid, merchant)
    deadline = time.monotonic() + within
    while (kafka.missing or kafka.undelivered) and time.monotonic() < deadline:
        await asyncio.sleep(2)
        kafka = await asyncio.to_thread(check_kafka, servers, paid, merchant)
    return kafka


async def until(what: str, check: Callable[[], Awaitable[bool]], within: float) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise DrillError(f"timed out after {within:.0f}s waiting for {what}")
        await asyncio.sleep(1)


async def prepare(settings: Settings, base: str, rate: float, btc_every: int) -> tuple[Load, Merchant]:
    """A drill's load against the API at `base` (its payer funded) and the merchant's endpoint, started."""
    chain = (settings.evm_chains or [])[0]
    btc = RegtestWallet(settings) if btc_every else None
    if btc is not None:
        await btc.ensure_funds()
    merchant = Merchant(free_port())
    await merchant.start()
    shop = Shop(base, settings.jwt_secret or "")
    return Load(shop, Payer(chain, key_index=1, btc=btc), rate, btc_every), merchant


async def run(settings: Settings, rate: float, settle: float, observe: float, only: list[str],
              btc_every: int = 5) -> DrillReport:
    on_ha = ha.ha_settings(settings)
    load, merchant = await prepare(settings, f"http://127.0.0.1:{ports(settings).api}", rate, btc_every)
    shop, payer = load.shop, load.payer
    stop = asyncio.Event()
    reports: list[FaultReport] = []
    try:
        async with aiohttp.ClientSession() as http:
            await shop.seed(http, merchant)
        limit = int(rate * (len(faults(settings)) * (settle + observe + 60) + 120))
        tasks = [asyncio.create_task(load.run(stop, limit)), asyncio.create_task(load.pay(stop)),
                 asyncio.create_task(load.mine(stop))]
        chosen = [f for f in faults(settings) if not only or f.name in only]
        for fault in chosen:
            await asyncio.sleep(settle)
            report = await _inject(fault, load, observe)
            reports.append(report)
            print(_line(report), file=sys.stderr, flush=True)
        await asyncio.sleep(settle)
        stop.set()
        await asyncio.gather(*tasks[:2])
        miner_stop = asyncio.Event()
        miner = asyncio.create_task(load.mine(miner_stop))
        pool = await db.create_pool(on_ha)
        try:
            async def settled() -> bool:
                async with pool.acquire() as conn:
                    held = await invariants.check(conn, load.paid, merchant)
                return not held.lost and not held.webhooks_missing

            await until("every paid order to confirm and be announced", settled, 300)
            async with pool.acquire() as conn:
                held = await invariants.check(conn, load.paid, merchant)
        finally:
            miner_stop.set()
            await miner
            await pool.close()
        kafka = await kafka_read_back(on_ha.kafka_servers, load.paid, merchant)
        # a duplicate on Kafka is allowed: a relay whose batch was acknowledged by Kafka but whose commit
        # was cut by a database failover publishes it again (at least once); consumers keep event ids
        # unique, and the merchant being told once is what `webhooks_doubled` checks
        met = (all(r.met for r in reports) and held.hold and not kafka.missing and not kafka.reordered
               and not kafka.undelivered)
        return DrillReport(len(load.orders), len(load.paid), reports, held, kafka, met)
    finally:
        stop.set()
        await merchant.stop()
        await payer.close()


def _line(r: FaultReport) -> str:
    return (f"{r.fault:18} {r.target:12} failed {r.failed_requests:3} of {r.requests:4} requests, "
            f"failing for {r.failed_window_s:5.2f} s, p99 {r.p99_ms:7.1f} ms, healed in {r.recovered_s:5.1f} s"
            f"  {'ok' if r.met else 'MISSED'}" + (f"  {r.failures}" if r.failures else ""))


def report_lines(r: DrillReport) -> list[str]:
    i, k = r.invariants, r.kafka
    return [*(_line(f) for f in r.faults),
            f"orders {r.orders}, paid on chain {r.paid}: confirmed {i.confirmed}, lost {len(i.lost)}, "
            f"credited twice {len(i.credited_twice)}, credited wrong {len(i.credited_wrong)}, "
            f"unbalanced ledger groups {i.unbalanced_groups}, webhooks missing {len(i.webhooks_missing)}",
            f"kafka: {k.events} events of {k.orders} orders, missing {len(k.missing)}, duplicated {k.duplicated}, "
            f"reordered {len(k.reordered)}, not delivered to the merchant {len(k.undelivered)}",
            "drill " + ("passed" if r.met else "FAILED")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="just drill", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=4.0, help="orders per second (default 4)")
    parser.add_argument("--settle", type=float, default=8.0, help="seconds of steady load before each fault")
    parser.add_argument("--observe", type=float, default=20.0, help="seconds each fault lasts before it is healed")
    parser.add_argument("--only", nargs="*", default=[], metavar="FAULT", help="run only these faults")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    settings = load_settings()
    ha.up(settings)
    report = asyncio.run(run(settings, args.rate, args.settle, args.observe, args.only))
    print(msgspec.json.encode(report).decode() if args.json else "\n".join(report_lines(report)))
    return 0 if report.met else 1


if __name__ == "__main__":
    sys.exit(main())
