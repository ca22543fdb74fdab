"""`just bench` (HTTP): wrk against GET /v1/shops/{id}/menu (warm cache) and a bare aiohttp baseline, and
the rate limiter's cost.

Every server runs the same way: its own process, uvloop, aiohttp AppRunner, no access log. Two API
processes serve the menu: one as deployed, rate limits on (budgets no run reaches, so every request goes
the limiter's real way: its Redis leases and headers), one with BEANPAY_RATE_LIMITS=false. wrk runs
against each target in alternating rounds in the same run; the report gives each one's requests/s and
p50/p99 latency, the menu/baseline ratio and the limited/unlimited ratio (the machine is shared: ratios
hold, absolute numbers drift). Targets: menu/baseline >= 0.50, limiter cost under 5% (ratio >= 0.95).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from beanpay.config import load_settings
from beanpay.tokens import Claims, issue
from tests.bench.local import UNLIMITED_BUDGETS, free_port
from tests.harness.processes import stop_processes

BASELINE = """
import uvloop
from aiohttp import web

async def hello(request):
    return web.Response(body=b'{"hello":"world"}', content_type="application/json")

async def main(port):
    app = web.Application()
    app.router.add_get("/hello", hello)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
    import asyncio
    await asyncio.Event().wait()

import sys
uvloop.run(main(int(sys.argv[1])))
"""


@dataclass
class Result:
    name: str
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:  # noqa: S310 - loopback
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not answer within {timeout}s")


def call(method: str, url: str, token: str, body: object) -> dict[str, object]:
    req = urllib.request.Request(url, method=method, data=json.dumps(body).encode(),  # noqa: S310
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:  # noqa: S310 - loopback
        return dict(json.loads(r.read()))


def seed(base: str, secret: str) -> str:
    op = issue(Claims(sub=uuid.uuid4(), role="operator"), secret, ttl=600)
    shop = call("POST", f"{base}/v1/shops", op, {"name": "Bench Beans", "address": "1 Load St"})
    for i in range(12):
        p = call("POST", f"{base}/v1/products", op, {
            "name": f"Drink {i}", "category": "coffee", "base_price": "3.50",
            "customizations": [{"name": "size", "options": [{"name": "s"}, {"name": "l", "price_delta": "0.50"}]}]})
        call("PUT", f"{base}/v1/shops/{shop['id']}/products/{p['id']}", op, {"price": "3.75"})
    return str(shop["id"])


_UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(name: str, url: str, *, seconds: int, connections: int, threads: int) -> Result:
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", url],
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def pct(p: str) -> float:
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)\b", out)
        assert m is not None, out
        return float(m.group(1)) * _UNIT[m.group(2)]

    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return Result(name, rps, pct("50"), pct("99"), int(non2xx.group(1)) if non2xx else 0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10, help="duration of each wrk round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per target")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    settings = load_settings()
    api_port, free_api_port, base_port = free_port(), free_port(), free_port()
    env = {**os.environ, "BEANPAY_API_PORT": str(api_port), "BEANPAY_LOG_LEVEL": "warning", **UNLIMITED_BUDGETS}
    free_env = {**env, "BEANPAY_API_PORT": str(free_api_port), "BEANPAY_RATE_LIMITS": "false"}
    beanpay = str(Path(sys.executable).with_name("beanpay"))
    procs = [subprocess.Popen([beanpay, "api"], env=env), subprocess.Popen([beanpay, "api"], env=free_env),
             subprocess.Popen([sys.executable, "-c", BASELINE, str(base_port)])]
    try:
        api, unlimited = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{free_api_port}"
        wait_http(f"{api}/readyz")
        wait_http(f"{unlimited}/readyz")
        wait_http(f"http://127.0.0.1:{base_port}/hello")
        shop_id = seed(api, settings.jwt_secret or "")
        menu_url = f"{api}/v1/shops/{shop_id}/menu"
        free_menu_url = f"{unlimited}/v1/shops/{shop_id}/menu"
        for url in (menu_url, free_menu_url):
            with urllib.request.urlopen(url) as r:  # noqa: S310 - warm the cache
                assert r.status == 200
        targets = {"baseline hello": f"http://127.0.0.1:{base_port}/hello", "menu (warm cache)": menu_url,
                   "menu, no rate limits": free_menu_url}
        for url in (menu_url, free_menu_url):
            wrk("warm-up", url, seconds=2, connections=args.connections, threads=args.threads)
        runs: dict[str, list[Result]] = {k: [] for k in targets}
        for _ in range(args.rounds):
            for name, url in targets.items():
                runs[name].append(wrk(name, url, seconds=args.seconds, connections=args.connections,
                                      threads=args.threads))
    finally:
        stop_processes(procs, timeout=10)

    def median(rs: list[Result]) -> Result:
        by = sorted(rs, key=lambda r: r.rps)
        mid = by[len(by) // 2]
        return Result(mid.name, mid.rps, mid.p50_ms, mid.p99_ms, sum(r.non_2xx for r in rs))

    base, menu = median(runs["baseline hello"]), median(runs["menu (warm cache)"])
    free = median(runs["menu, no rate limits"])
    ratio = menu.rps / base.rps
    limiter = menu.rps / free.rps
    print(f"\nwrk -t{args.threads} -c{args.connections} -d{args.seconds}s, {args.rounds} alternating rounds, "
          f"median round shown")
    print(f"{'target':20} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
    for r in (base, menu, free):
        print(f"{r.name:20} {r.rps:9.0f} {r.p50_ms:8.2f} {r.p99_ms:8.2f} {r.non_2xx:8d}")
    print(f"menu/baseline throughput ratio: {ratio:.2f} (target >= 0.50); menu p99 {menu.p99_ms:.2f} ms "
          f"(target < 10 ms)")
    print(f"rate limiter: limited/unlimited menu throughput {limiter:.3f} (target >= 0.95, under 5% cost)")
    report = settings.state_path / "bench" / "http.json"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(json.dumps({"baseline": asdict(base), "menu": asdict(menu), "ratio": ratio,
                                  "menu_without_limits": asdict(free), "limiter_ratio": limiter,
                                  "rounds": {k: [asdict(r) for r in v] for k, v in runs.items()}}, indent=2))
    print(f"report: {report}")
    ok = ratio >= 0.5 and menu.p99_ms < 10 and menu.non_2xx == 0 and limiter >= 0.95 and free.non_2xx == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
