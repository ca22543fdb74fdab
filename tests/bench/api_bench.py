"""`just bench` (API under load): one `beanpay api` process on a database of its own, loaded from outside
by real load tools, each figure next to a baseline measured in the same run.

1. Order creation: wrk (a Lua script gives every POST /v1/orders its own Idempotency-Key), 16
   connections. Baseline: a bare aiohttp handler that makes one durable INSERT per request, the least
   any order creation must do. Target: >= 500 orders/s, p99 < 100 ms.
2. Held connections: loadgen (tests/bench/loadgen, Go) opens 10,000 keep-alive connections and sends
   2,000 menu reads a second over them, each connection on its own schedule (open loop). Baseline: the
   same against a bare aiohttp hello. Target: every connection held, 0 errors, p99 < 100 ms; the API's
   memory is reported.
3. The closed-loop curve: wrk on the menu at 100, 1,000 and 10,000 connections (requests/s, p99, timeouts).
4. Mixed traffic: 1,000 users (80% menu and catalog reads, 15% orders, 5% order polls), each thinking
   about a second between requests, 60 s. Target: p99 < 100 ms per route (the system design's).

The file limit is raised to the hard limit (loadgen and the API each hold 10,000 sockets).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from beanpay.config import load_settings
from beanpay.deploy.devstack.databases import create_database, drop_database
from beanpay.tokens import Claims, issue
from tests.bench.http_bench import BASELINE, call, wait_http
from tests.bench.local import UNLIMITED_BUDGETS, free_port
from tests.harness.processes import stop_processes

HERE = Path(__file__).resolve().parent
BEANPAY = str(Path(sys.executable).with_name("beanpay"))

# the least an order must do: one row written durably, behind the same server stack
WRITE_BASELINE = """
import sys, uuid, asyncpg, uvloop
from aiohttp import web

async def main(port, dsn):
    pool = await asyncpg.create_pool(dsn, min_size=4, max_size=20)
    await pool.execute("CREATE TABLE IF NOT EXISTS bench_writes (id uuid PRIMARY KEY, body text)")

    async def write(request):
        body = await request.read()
        row_id = await pool.fetchval("INSERT INTO bench_writes VALUES ($1, $2) RETURNING id", uuid.uuid4(),
                                     body.decode())
        return web.Response(body=b'{"id":"%s"}' % str(row_id).encode(), status=201, content_type="application/json")

    app = web.Application()
    app.router.add_post("/write", write)
    app.router.add_get("/healthz", lambda r: web.Response(text="ok"))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=4096).start()
    import asyncio
    await asyncio.Event().wait()

uvloop.run(main(int(sys.argv[1]), sys.argv[2]))
"""

POST_LUA = """
local n = 0
local threads = 0
function setup(thread) thread:set("tid", threads); threads = threads + 1 end
function request()
  n = n + 1
  return wrk.format("POST", PATH, {["Content-Type"] = "application/json", ["Authorization"] = AUTH,
                                   ["Idempotency-Key"] = "bench-" .. tid .. "-" .. n}, BODY)
end
"""

_UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def raise_file_limit() -> int:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def wrk(url: str, *, seconds: int, connections: int, threads: int = 2, script: str | None = None,
        timeout: str = "5s") -> dict[str, Any]:
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", f"--timeout={timeout}"]
    if script:
        cmd += ["-s", script]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout

    def pct(p: str) -> float:
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)\b", out)
        return float(m.group(1)) * _UNIT[m.group(2)] if m else float("nan")

    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {"connections": connections, "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
            "p50_ms": pct("50"), "p99_ms": pct("99"), "non_2xx": int(non2xx.group(1)) if non2xx else 0,
            "timeouts": int(errors.group(4)) if errors else 0,
            "socket_errors": sum(int(x) for x in errors.groups()[:3]) if errors else 0}


def loadgen_binary(state: Path) -> str:
    """Build tests/bench/loadgen once (Go standard library only); cached under the state folder."""
    out = state / "cache" / "bin" / "loadgen"
    src = HERE / "loadgen" / "main.go"
    if not out.exists() or out.stat().st_mtime < src.stat().st_mtime:
        out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["go", "build", "-o", str(out), "."], cwd=HERE / "loadgen", check=True,
                       env={**os.environ, "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local"})
    return str(out)


def loadgen(binary: str, *args: str) -> dict[str, Any]:
    out = subprocess.run([binary, *args], capture_output=True, text=True, check=True, timeout=600).stdout
    return dict(json.loads(out))


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def seed(base: str, secret: str) -> dict[str, Any]:
    op = issue(Claims(sub=uuid.uuid4(), role="operator"), secret, ttl=7200)
    shop = call("POST", f"{base}/v1/shops", op, {"name": "Bench Beans", "address": "1 Load St"})
    products = []
    for i in range(12):
        p = call("POST", f"{base}/v1/products", op, {
            "name": f"Drink {i}", "category": "coffee", "base_price": "3.50",
            "customizations": [{"name": "size", "options": [{"name": "s"}, {"name": "l", "price_delta": "0.50"}]}]})
        call("PUT", f"{base}/v1/shops/{shop['id']}/products/{p['id']}", op, {"price": "3.75"})
        products.append(p["id"])
    # the ordered product's stock is tracked, so every order also holds stock (one row, locked by each)
    call("POST", f"{base}/v1/supplies", op, {"shop_id": shop["id"], "product_id": products[0],
                                             "quantity": 1_000_000_000, "unit": "cups", "reorder_level": 10})
    customers = [issue(Claims(sub=uuid.uuid4(), role="customer"), secret, ttl=7200) for _ in range(200)]
    order = {"shop_id": shop["id"], "items": [{"product_id": products[0], "customizations": {"size": ["l"]}}],
             "payment": {"chain": "eth", "asset": "tUSDC"}}
    return {"shop": shop["id"], "products": products, "customers": customers, "order": order}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=20, help="each wrk and hold run (default 20)")
    parser.add_argument("--mixed-seconds", type=int, default=60)
    parser.add_argument("--conns", type=int, default=10_000, help="connections held (default 10,000)")
    parser.add_argument("--rate", type=float, default=2_000, help="requests/s over the held connections")
    parser.add_argument("--users", type=int, default=1_000)
    parser.add_argument("--parts", default="orders,hold,curve,mixed", help="which parts to run")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    limit = raise_file_limit()
    settings = load_settings()
    binary = loadgen_binary(settings.state_path)
    dsn = asyncio.run(create_database(settings.dsn, "beanpay_apibench"))
    api_port, hello_port, write_port = free_port(), free_port(), free_port()
    env = {**os.environ, "BEANPAY_API_PORT": str(api_port), "BEANPAY_LOG_LEVEL": "warning",
           "BEANPAY_DATABASE_URL": dsn, **UNLIMITED_BUDGETS}
    procs = {"api": subprocess.Popen([BEANPAY, "api"], env=env),
             "hello": subprocess.Popen([sys.executable, "-c", BASELINE, str(hello_port)]),
             "write": subprocess.Popen([sys.executable, "-c", WRITE_BASELINE, str(write_port), dsn])}
    report: dict[str, Any] = {"file_limit": limit, "conns": args.conns}
    try:
        api = f"http://127.0.0.1:{api_port}"
        wait_http(f"{api}/readyz")
        wait_http(f"http://127.0.0.1:{hello_port}/hello")
        wait_http(f"http://127.0.0.1:{write_port}/healthz")
        data = seed(api, settings.jwt_secret or "")
        menu = f"/v1/shops/{data['shop']}/menu"
        with urllib.request.urlopen(api + menu) as r:  # noqa: S310 - loopback; warms the cache
            assert r.status == 200
        report["api_rss_mb_idle"] = rss_mb(procs["api"].pid)
        with tempfile.TemporaryDirectory() as tmp:
            if "orders" in parts:
                report["orders"] = orders_part(tmp, api, write_port, data, args.seconds)
            if "hold" in parts:
                report["hold"] = hold_part(binary, api_port, hello_port, menu, procs["api"].pid, args)
            if "curve" in parts:
                report["curve"] = [wrk(api + menu, seconds=max(5, args.seconds // 2), connections=c)
                                   for c in (100, 1_000, 10_000)]
                report["api_rss_mb_after_curve"] = rss_mb(procs["api"].pid)
            if "mixed" in parts:
                report["mixed"] = mixed_part(binary, tmp, api, data, args)
    finally:
        stop_processes(procs.values(), timeout=30)
        asyncio.run(drop_database(settings.dsn, dsn))
    return summarize(report, parts)


def orders_part(tmp: str, api: str, write_port: int, data: dict[str, Any], seconds: int) -> dict[str, Any]:
    script = Path(tmp) / "orders.lua"
    script.write_text(f'PATH = "/v1/orders"\nAUTH = "Bearer {data["customers"][0]}"\n'
                      f"BODY = {json.dumps(json.dumps(data['order']))}\n" + POST_LUA)
    baseline_script = Path(tmp) / "write.lua"
    baseline_script.write_text(f'PATH = "/write"\nAUTH = "none"\nBODY = {json.dumps(json.dumps(data["order"]))}\n'
                               + POST_LUA)
    wrk(f"{api}/v1/orders", seconds=3, connections=16, script=str(script))  # warm-up
    orders = wrk(f"{api}/v1/orders", seconds=seconds, connections=16, script=str(script))
    baseline = wrk(f"http://127.0.0.1:{write_port}/write", seconds=seconds, connections=16,
                   script=str(baseline_script))
    return {"orders": orders, "one_insert_baseline": baseline, "ratio": round(orders["rps"] / baseline["rps"], 2)}


def hold_part(binary: str, api_port: int, hello_port: int, menu: str, api_pid: int,
              args: argparse.Namespace) -> dict[str, Any]:
    common = ["-mode", "hold", "-conns", str(args.conns), "-rate", str(args.rate), "-duration", f"{args.seconds}s",
              "-connect-for", "15s"]
    api = loadgen(binary, *common, "-addr", f"127.0.0.1:{api_port}", "-path", menu)
    api["api_rss_mb"] = rss_mb(api_pid)
    baseline = loadgen(binary, *common, "-addr", f"127.0.0.1:{hello_port}", "-path", "/hello")
    return {"menu": api, "hello_baseline": baseline}


def mixed_part(binary: str, tmp: str, api: str, data: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    reads = [f"/v1/shops/{data['shop']}/menu", f"/v1/shops/{data['shop']}",
             *(f"/v1/products/{p}" for p in data["products"]), "/v1/products?category=coffee&limit=20"]
    scenario = Path(tmp) / "mixed.json"
    scenario.write_text(json.dumps({"base": api, "reads": reads, "tokens": data["customers"],
                                    "order": data["order"], "weights": [80, 15, 5]}))
    return loadgen(binary, "-mode", "mixed", "-scenario", str(scenario), "-users", str(args.users),
                   "-duration", f"{args.mixed_seconds}s", "-think", "1s")


def summarize(report: dict[str, Any], parts: set[str]) -> int:
    settings = load_settings()
    out = settings.state_path / "bench" / "api.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    ok = True
    if "orders" in parts:
        o = report["orders"]["orders"]
        good = o["rps"] >= 500 and o["p99_ms"] < 100 and o["non_2xx"] == 0
        ok &= good
        print(f"orders: {o['rps']:.0f}/s, p50 {o['p50_ms']} ms, p99 {o['p99_ms']} ms, non-2xx {o['non_2xx']} "
              f"(one-insert baseline {report['orders']['one_insert_baseline']['rps']:.0f}/s, ratio "
              f"{report['orders']['ratio']}); target >= 500/s, p99 < 100 ms: {'PASS' if good else 'MISS'}")
    if "hold" in parts:
        h, b = report["hold"]["menu"], report["hold"]["hello_baseline"]
        route = h["routes"].get("GET", {})
        good = h["connections_held"] >= report["conns"] and h["errors"] == 0 and route.get("p99_ms", 1e9) < 100
        ok &= good
        print(f"held connections: {h['connections_held']} held, {h['errors']} errors, {route.get('requests')} "
              f"reads, p50 {route.get('p50_ms')} ms, p99 {route.get('p99_ms')} ms, API RSS {h['api_rss_mb']} MB "
              f"(bare aiohttp p99 {b['routes'].get('GET', {}).get('p99_ms')} ms); target p99 < 100 ms, 0 errors: "
              f"{'PASS' if good else 'MISS'}")
    if "curve" in parts:
        for point in report["curve"]:
            print(f"wrk -c{point['connections']}: {point['rps']:.0f} req/s, p99 {point['p99_ms']} ms, "
                  f"{point['timeouts']} timeouts, {point['socket_errors']} socket errors")
    if "mixed" in parts:
        m = report["mixed"]
        worst = max(r["p99_ms"] for r in m["routes"].values())
        good = m["errors"] == 0 and worst < 100
        ok &= good
        for name, r in sorted(m["routes"].items()):
            print(f"mixed {name:32} {r['requests']:6} requests, p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms")
        print(f"mixed: {m['requests']} requests from {m['users']} users, {m['errors']} errors; target p99 < 100 ms "
              f"per route: {'PASS' if good else 'MISS'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
