"""`just bench` (Lightning): orders paid end to end over Lightning on the dev stack's real lnd nodes.

The customer's node pays the orders' BOLT11 invoices at a steady rate (open loop: one payment started every
1/rate s, whatever the earlier ones are doing) for the run's length. Real processes serve it: `beanpay api`
(the orders and their invoices, made before the run), `beanpay lightning` (settles each invoice from lnd's
stream), `beanpay relay` and `beanpay webhooks serve`, which deliver `order.confirmed` to a local receiver
that checks each signature.

Measured per payment, on one clock (this machine): from the merchant's node announcing the invoice settled
(a second subscriber to its invoice stream, beside beanpay's) to the order confirmed in PostgreSQL (the
settling transaction's time, which starts just before it commits; negative when beanpay heard first), and
to the signed webhook received.
Baseline, in the same run: lnd's own payment rate alone, the customer's node paying invoices made directly
on the merchant's node, as fast as it goes with as many payments in flight as the load has at most.
Targets: the rate sustained (every payment settled, every order confirmed, every webhook received, each
once) and p99 from settlement to confirmed under 300 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import web
from standardwebhooks.webhooks import Webhook

from beanpay.chains.lightning.lnd import LndClient
from beanpay.config import load_settings
from beanpay.deploy.devstack import stack as devstack
from beanpay.deploy.devstack.databases import create_database, drop_database
from beanpay.deploy.devstack.lnd import LndNode, rebalance
from beanpay.deploy.endpoint import Endpoint
from beanpay.engine.webhooks.fanout import TOPICS
from beanpay.services import commands
from beanpay.tokens import Claims, issue
from tests.bench.api_bench import raise_file_limit
from tests.bench.http_bench import call, wait_http
from tests.bench.local import UNLIMITED_BUDGETS, free_port, group_at_end, place_orders
from tests.harness.processes import stop_processes

BEANPAY = str(Path(sys.executable).with_name("beanpay"))
PRICE = "0.25"  # USD: a few hundred sats each, so a run fits the dev channel many times over


class Settlements:
    """The merchant's node's own invoice stream, as a second subscriber beside beanpay: when each invoice's
    settlement was announced (the start of every latency measured here)."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}

    async def follow(self, client: LndClient) -> None:
        async for invoice in client.subscribe_invoices(0):
            if invoice.state == "SETTLED":
                self.at.setdefault(invoice.hash_hex, time.time())


class Receiver:
    """The merchant's webhook endpoint: verifies each delivery and notes when each order's confirmation came."""

    def __init__(self) -> None:
        self.port, self.secret = free_port(), ""
        self.confirmed: dict[str, float] = {}
        self.duplicates = 0
        self.bad = 0

    async def handle(self, request: web.Request) -> web.Response:
        at = time.time()
        try:
            message = Webhook(self.secret).verify(await request.read(), dict(request.headers))
        except Exception:
            self.bad += 1
            return web.Response(status=400)
        order_id = message["data"]["order_id"]
        if order_id in self.confirmed:
            self.duplicates += 1  # a redelivery after a lost answer would be; none is expected here
        self.confirmed.setdefault(order_id, at)
        return web.Response(status=204)

    async def start(self) -> web.AppRunner:
        return await Endpoint(self.handle, "/hook", port=self.port).start()


def seed(base: str, secret: str, receiver: Receiver) -> dict[str, Any]:
    op = issue(Claims(sub=uuid.uuid4(), role="operator"), secret, ttl=7200)
    shop = call("POST", f"{base}/v1/shops", op, {"name": "Lightning Beans", "address": "1 Fast Lane"})
    product = call("POST", f"{base}/v1/products", op, {"name": "Espresso", "category": "coffee", "base_price": PRICE})
    call("PUT", f"{base}/v1/shops/{shop['id']}/products/{product['id']}", op, {"price": PRICE})
    hook = call("POST", f"{base}/v1/shops/{shop['id']}/webhooks", op,
                {"url": f"http://127.0.0.1:{receiver.port}/hook", "event_types": ["order.confirmed"]})
    receiver.secret = str(hook["secret"])
    return {"shop_id": shop["id"], "items": [{"product_id": product["id"], "quantity": 1}],
            "payment": {"chain": "lightning", "asset": "BTC"}}


def _with_invoice(order: dict[str, Any]) -> None:
    assert order["payment"]["lightning"] is not None, order["payment"]["lightning_unavailable"]


async def paced(client: LndClient, invoices: list[str], rate: float) -> tuple[list[float], list[str], float]:
    """Pay each invoice, starting one every 1/rate s; returns when each finished (wall clock), failures, and
    the most payments that were in flight at once."""
    done: list[float] = [0.0] * len(invoices)
    failures: list[str] = []
    in_flight, most = 0, 0

    async def one(i: int, bolt11: str) -> None:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        try:
            await client.pay(bolt11, wait_seconds=60)
            done[i] = time.time()
        except Exception as exc:
            failures.append(repr(exc)[:200])
        finally:
            in_flight -= 1

    start = time.monotonic()
    tasks = []
    for i, bolt11 in enumerate(invoices):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, bolt11)))
    await asyncio.gather(*tasks)
    return done, failures, most


async def lnd_alone(merchant: LndClient, customer: LndClient, n: int, in_flight: int) -> dict[str, Any]:
    """The baseline: lnd paying invoices made on the merchant's node directly, `in_flight` at a time."""
    bills = [await merchant.add_invoice(value_msat=400_000, description_hash=os.urandom(32), expiry_seconds=600)
             for _ in range(n)]
    gate = asyncio.Semaphore(in_flight)
    failures = 0

    async def one(bolt11: str) -> None:
        nonlocal failures
        async with gate:
            try:
                await customer.pay(bolt11, wait_seconds=60)
            except Exception:
                failures += 1

    started = time.monotonic()
    await asyncio.gather(*(one(b.payment_request) for b in bills))
    seconds = time.monotonic() - started
    return {"payments": n, "seconds": round(seconds, 2), "per_second": round(n / seconds, 1), "failures": failures,
            "in_flight": in_flight}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1) if ordered else float("nan")


async def run(args: argparse.Namespace, base: str, dsn: str, receiver: Receiver) -> dict[str, Any]:
    settings = load_settings()
    merchant_node, customer_node = LndNode(settings, "merchant"), LndNode(settings, "customer")
    merchant, customer = merchant_node.client(), customer_node.client()
    count = int(args.rate * args.seconds)
    try:
        body = seed(base, settings.jwt_secret or "", receiver)
        orders = await place_orders(base, body, count, _with_invoice)
        by_hash = {o["payment"]["lightning"]["payment_hash"]: o for o in orders}
        invoices = [o["payment"]["lightning"]["bolt11"] for o in orders]
        settlements = Settlements()
        stream = merchant_node.client()
        watching = asyncio.create_task(settlements.follow(stream))
        await asyncio.sleep(2.0)  # past the stream's backlog of earlier runs
        started = time.monotonic()
        done, failures, most = await paced(customer, invoices, args.rate)
        load_seconds = time.monotonic() - started
        deadline = time.monotonic() + 60
        while len(receiver.confirmed) < count and time.monotonic() < deadline:  # noqa: ASYNC110 (a poll)
            await asyncio.sleep(0.2)
        conn = await asyncpg.connect(dsn)
        try:
            rows = await conn.fetch("SELECT l.payment_hash, extract(epoch FROM p.confirmed_at)::float8 AS at, "
                                    "p.status, p.amount_received = p.crypto_amount AS exact FROM lightning_invoices l "
                                    "JOIN crypto_payments p ON p.id = l.payment_id")
            credits = await conn.fetchval("SELECT count(*) FROM ledger_entries WHERE kind = 'payment' "
                                          "AND account LIKE 'merchant:%'")
        finally:
            await conn.close()
        watching.cancel()
        await asyncio.gather(watching, return_exceptions=True)
        await stream.close()
        confirmed_after, webhook_after = [], []
        for r in rows:
            order = by_hash[r["payment_hash"]]
            settled_at = settlements.at.get(r["payment_hash"])
            if settled_at is None:
                continue
            if r["status"] == "confirmed":
                confirmed_after.append(r["at"] - settled_at)
            if order["id"] in receiver.confirmed:
                webhook_after.append(receiver.confirmed[order["id"]] - settled_at)
        baseline = await lnd_alone(merchant, customer, args.baseline_payments, max(most, 1))
        return {
            "rate_wanted": args.rate, "seconds": args.seconds, "payments": count,
            "paid_per_second": round(sum(1 for d in done if d) / load_seconds, 1), "most_in_flight": most,
            "pay_failures": len(failures), "failure_samples": failures[:3],
            "settlements_seen": sum(h in settlements.at for h in by_hash),
            "orders_confirmed": sum(r["status"] == "confirmed" for r in rows),
            "amounts_exact": all(r["exact"] for r in rows), "ledger_credits": int(credits),
            "webhooks_received": len(receiver.confirmed), "webhook_duplicates": receiver.duplicates,
            "webhook_bad_signatures": receiver.bad,
            "settled_to_confirmed_ms": {"p50": pct(confirmed_after, 0.5), "p99": pct(confirmed_after, 0.99),
                                        "max": pct(confirmed_after, 1.0)},
            "settled_to_webhook_ms": {"p50": pct(webhook_after, 0.5), "p99": pct(webhook_after, 0.99)},
            "lnd_alone": baseline,
            "ratio_to_lnd_alone": round(sum(1 for d in done if d) / load_seconds / baseline["per_second"], 2),
            "mean_confirmed_ms": round(statistics.fmean(confirmed_after) * 1000, 1) if confirmed_after else None,
        }
    finally:
        await merchant.close()
        await customer.close()


async def serve(args: argparse.Namespace, base: str, dsn: str) -> dict[str, Any]:
    receiver = Receiver()
    runner = await receiver.start()
    try:
        return await run(args, base, dsn, receiver)
    finally:
        await runner.cleanup()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=50.0, help="payments started per second")
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--baseline-payments", type=int, default=500)
    args = parser.parse_args()
    raise_file_limit()
    settings = load_settings()
    devstack.up(settings, ["btcd", "lnd-merchant", "lnd-customer"])
    settings = load_settings()
    rebalance(settings)  # the customer's side of the channel full again, whatever earlier runs paid
    dsn = asyncio.run(create_database(settings.dsn, "beanpay_lnbench"))
    api_port = free_port()
    group = f"lnbench-{uuid.uuid4().hex[:8]}"
    asyncio.run(group_at_end(settings.kafka_servers, group, TOPICS))  # the fan-out starts at now
    env = {**os.environ, "BEANPAY_API_PORT": str(api_port), "BEANPAY_LOG_LEVEL": "warning",
           "BEANPAY_DATABASE_URL": dsn, "BEANPAY_METRICS_PORT": "", "BEANPAY_LIGHTNING_HEALTH_SECONDS": "1",
           "BEANPAY_WEBHOOK_GROUP": group, **UNLIMITED_BUDGETS}
    procs = {name: subprocess.Popen([BEANPAY, *cmd], env=env)
             for name, cmd in commands("api", "lightning", "relay", "webhooks").items()}
    try:
        base = f"http://127.0.0.1:{api_port}"
        wait_http(f"{base}/readyz")
        time.sleep(3)  # the lightning service registers the platform's node and reads its health
        report = asyncio.run(serve(args, base, dsn))
    finally:
        stop_processes(procs.values(), timeout=30)
        asyncio.run(drop_database(settings.dsn, dsn))
    out = settings.state_path / "bench" / "lightning.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    n = report["payments"]
    good = (report["pay_failures"] == 0 and report["orders_confirmed"] == n and report["webhooks_received"] == n
            and report["ledger_credits"] == n and report["amounts_exact"] and report["webhook_bad_signatures"] == 0
            and report["settled_to_confirmed_ms"]["p99"] < 300 and report["paid_per_second"] >= 0.95 * args.rate)
    print(f"lightning: {report['paid_per_second']}/s paid of {args.rate}/s wanted for {args.seconds} s "
          f"(lnd alone: {report['lnd_alone']['per_second']}/s, ratio {report['ratio_to_lnd_alone']}); settled to "
          f"confirmed p50 {report['settled_to_confirmed_ms']['p50']} ms, p99 {report['settled_to_confirmed_ms']['p99']}"
          f" ms (target < 300); {report['orders_confirmed']}/{n} confirmed, {report['webhooks_received']}/{n} "
          f"webhooks: {'PASS' if good else 'FAIL'}")
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
