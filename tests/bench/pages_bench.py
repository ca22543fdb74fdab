"""`just bench` (pages): one `beanpay api` process holds 2,000 open checkout event streams (Server-Sent
Events) while its checkout pages are loaded, and the streams still get their updates.

A relay and an engine run beside it, so the streams are fed the way production feeds them: 100 of the
orders are paid while the pages are loaded (deposits recorded as the indexer would), the engine settles
them, the relay publishes the events, and the API's Kafka feed wakes exactly those streams.

Load: wrk on GET /pay/{token} (a Lua script rotating over 200 orders' links), 8 connections, 20 s.
Baseline, in the same run: the same wrk with no stream open. Target: with the 2,000 streams open,
p99 page load < 50 ms, every stream still open at the end, and every paid order's stream told "paid".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from beanpay.config import load_settings
from beanpay.deploy.devstack.databases import create_database, drop_database
from beanpay.tokens import Claims, issue
from tests.bench.api_bench import raise_file_limit, rss_mb, wrk
from tests.bench.http_bench import call, wait_http
from tests.bench.local import UNLIMITED_BUDGETS, free_port, place_orders
from tests.harness.processes import stop_processes

BEANPAY = str(Path(sys.executable).with_name("beanpay"))
STAGE = re.compile(r'data-stage="(\w+)"')
ROTATE_LUA = """
paths = {}
for line in io.lines(PATHS) do paths[#paths + 1] = line end
request = function()
  return wrk.format("GET", paths[math.random(#paths)])
end
"""


def seed(base: str, secret: str) -> dict[str, Any]:
    op = issue(Claims(sub=uuid.uuid4(), role="operator"), secret, ttl=7200)
    shop = call("POST", f"{base}/v1/shops", op, {"name": "Bench Beans", "address": "1 Load St"})
    product = call("POST", f"{base}/v1/products", op, {
        "name": "Latte", "category": "coffee", "base_price": "3.50",
        "customizations": [{"name": "size", "options": [{"name": "s"}, {"name": "l", "price_delta": "0.50"}]}]})
    call("PUT", f"{base}/v1/shops/{shop['id']}/products/{product['id']}", op, {"price": "3.75"})
    return {"shop_id": shop["id"], "items": [{"product_id": product["id"], "customizations": {"size": ["l"]}}],
            "payment": {"chain": "eth", "asset": "tUSDC"}}


class Streams:
    """Many open checkout event streams, each remembering the last stage it was shown."""

    def __init__(self) -> None:
        self.stage: dict[str, str] = {}
        self.open = 0
        self.errors: list[str] = []

    async def hold(self, session: aiohttp.ClientSession, url: str, order_id: str, stop: asyncio.Event) -> None:
        try:
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=None, sock_read=120)) as r:
                assert r.status == 200
                self.open += 1
                try:
                    buffer = ""
                    while not stop.is_set():
                        chunk = await r.content.readany()
                        if not chunk:
                            self.errors.append(f"{order_id}: stream ended")
                            return
                        buffer += chunk.decode()
                        if (found := STAGE.findall(buffer)):
                            self.stage[order_id] = found[-1]
                            buffer = buffer[-200:]
                finally:
                    self.open -= 1
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.errors.append(f"{order_id}: {exc!r}")


async def pay(dsn: str, orders: list[dict[str, Any]]) -> None:
    """Deposits recorded as the indexer records them (confirmed, in a block); the engine settles them."""
    conn = await asyncpg.connect(dsn)
    try:
        for o in orders:
            p = o["payment"]
            await conn.execute(
                """INSERT INTO deposits (chain, asset, txid, output_index, address, amount, block_hash, block_height,
                                         status, confirmed_at)
                   VALUES ($1, $2, $3, 0, $4, $5, $6, 1, 'confirmed', now())""",
                p["chain"], p["asset"], "0x" + uuid.uuid4().hex * 2, p["address"], int(p["amount"]),
                "0x" + uuid.uuid4().hex * 2)
            await asyncio.sleep(0.1)  # spread over the measured window
    finally:
        await conn.close()


async def wrk_async(url: str, script: str, seconds: int, connections: int) -> dict[str, Any]:
    return await asyncio.to_thread(wrk, url, seconds=seconds, connections=connections, script=script)


async def run(args: argparse.Namespace, base: str, dsn: str, api_pid: int, tmp: str) -> dict[str, Any]:
    body = seed(base, load_settings().jwt_secret or "")
    orders = await place_orders(base, body, args.streams)
    paths = Path(tmp) / "paths.txt"
    paths.write_text("".join(f"/pay/{o['checkout_token']}\n" for o in orders[:200]))
    script = Path(tmp) / "rotate.lua"
    script.write_text(f'PATHS = "{paths}"\n' + ROTATE_LUA)
    await wrk_async(base + "/", str(script), 3, args.connections)  # warm-up
    baseline = await wrk_async(base + "/", str(script), args.seconds, args.connections)
    report: dict[str, Any] = {"streams_wanted": args.streams, "baseline": baseline,
                              "api_rss_mb_before": rss_mb(api_pid)}

    streams, stop = Streams(), asyncio.Event()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.monotonic()
        tasks = [asyncio.create_task(streams.hold(session, f"{base}/pay/{o['checkout_token']}/events", o["id"], stop))
                 for o in orders]
        deadline = time.monotonic() + 120
        while len(streams.stage) < len(orders) and time.monotonic() < deadline:  # noqa: ASYNC110 (a poll)
            await asyncio.sleep(0.2)
        report["streams_opened_s"] = round(time.monotonic() - started, 1)
        report["api_rss_mb_streams"] = rss_mb(api_pid)
        paid = orders[-args.paid:]  # not among the pages wrk loads: their stream updates are what is checked
        paying = asyncio.create_task(pay(dsn, paid))
        loaded = await wrk_async(base + "/", str(script), args.seconds, args.connections)
        await paying
        deadline = time.monotonic() + 60
        told = lambda: sum(streams.stage.get(o["id"]) == "paid" for o in paid)  # noqa: E731
        while told() < len(paid) and time.monotonic() < deadline:  # noqa: ASYNC110 (a poll of the streams)
            await asyncio.sleep(0.2)
        report.update(with_streams=loaded, streams_open=streams.open,
                      streams_told_paid=sum(streams.stage.get(o["id"]) == "paid" for o in paid), paid=len(paid),
                      stream_errors=streams.errors[:5], stream_error_count=len(streams.errors),
                      api_rss_mb_after=rss_mb(api_pid))
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=2_000)
    parser.add_argument("--paid", type=int, default=100, help="orders paid while the pages are loaded")
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    raise_file_limit()
    settings = load_settings()
    dsn = asyncio.run(create_database(settings.dsn, "beanpay_pagesbench"))
    api_port = free_port()
    env = {**os.environ, "BEANPAY_API_PORT": str(api_port), "BEANPAY_LOG_LEVEL": "warning",
           "BEANPAY_DATABASE_URL": dsn, "BEANPAY_METRICS_PORT": "", **UNLIMITED_BUDGETS}
    procs = {name: subprocess.Popen([BEANPAY, name], env=env) for name in ("api", "relay", "engine")}
    try:
        base = f"http://127.0.0.1:{api_port}"
        wait_http(f"{base}/readyz")
        with tempfile.TemporaryDirectory() as tmp:
            report = asyncio.run(run(args, base, dsn, procs["api"].pid, tmp))
    finally:
        stop_processes(procs.values(), timeout=30)
        asyncio.run(drop_database(settings.dsn, dsn))
    out = settings.state_path / "bench" / "pages.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    w, b = report["with_streams"], report["baseline"]
    good = (w["p99_ms"] < 50 and w["non_2xx"] == 0 and report["streams_open"] >= args.streams
            and report["streams_told_paid"] == report["paid"] and report["stream_error_count"] == 0)
    print(f"checkout pages with {report['streams_open']} streams open: {w['rps']:.0f} loads/s, p50 {w['p50_ms']} ms, "
          f"p99 {w['p99_ms']} ms (no streams: {b['rps']:.0f}/s, p99 {b['p99_ms']} ms; ratio "
          f"{w['rps'] / b['rps']:.2f}); {report['streams_told_paid']}/{report['paid']} paid orders' streams told, "
          f"API RSS {report['api_rss_mb_after']} MB; target p99 < 50 ms, every stream open and told: "
          f"{'PASS' if good else 'MISS'}")
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
