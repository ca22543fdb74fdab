"""A JSON-RPC proxy in front of a real node that answers the way hosted providers do when they will not:
range caps with their exact error bodies, 429s with and without `Retry-After`, a monthly quota, truncated
replies, and a load-balanced backend whose logs lag the head it reports. Everything else is forwarded."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from beanpay.deploy.endpoint import free_port

ALCHEMY_429 = {"code": 429, "message": "Your app has exceeded its compute units per second capacity. If you have "
               "retries enabled, you can safely ignore this message. If not, check out "
               "https://docs.alchemy.com/reference/throughput"}
ALCHEMY_QUOTA = {"code": 429, "message": "Monthly capacity limit exceeded. Visit "
                 "https://dashboard.alchemy.com/settings/billing to upgrade your scaling policy for continued service."}


@dataclass
class Faults:
    range_cap: int | None = None  # eth_getLogs over this many blocks is refused...
    cap_style: str = "infura"  # ... in the words of: infura (suggests a range), alchemy (free tier), ankr (no number)
    rate_limit_every: int | None = None  # every Nth HTTP request: Alchemy's 429
    retry_after: str | None = None  # ... with this Retry-After header
    truncate_every: int | None = None  # every Nth reply cut in half
    reset_every: int | None = None  # every Nth request: the connection dropped without a reply
    wrong_log_hashes: int = 0  # this many eth_getLogs replies with a log naming another block (a broken backend)
    quota: bool = False  # every request: Alchemy's monthly cap
    logs_frozen_at: int | None = None  # eth_getLogs answers from a backend that has blocks up to here only
    head_lag: int = 0  # eth_blockNumber, blocks and logs from a backend this many blocks behind
    hidden: set[str] = field(default_factory=set)  # Bitcoin: transactions its mempool lost (getrawmempool)
    no_finalized: bool = False  # a node without the `finalized` tag (pre-merge geth's answer)


@dataclass
class RpcFaultProxy:
    upstream: str
    faults: Faults = field(default_factory=Faults)
    port: int = field(default_factory=free_port)
    requests: int = 0
    refused: dict[str, int] = field(default_factory=dict)  # what each fault answered, counted
    _headers: dict[str, str] = field(default_factory=dict)  # what the client authenticated with, passed on
    _runner: web.AppRunner | None = None
    _session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024**2)
        app.router.add_post("/", self.handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        self._session = aiohttp.ClientSession()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    def _count(self, kind: str) -> None:
        self.refused[kind] = self.refused.get(kind, 0) + 1

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        f, n = self.faults, self.requests
        body = await request.json()
        self._headers = {k: v for k, v in request.headers.items() if k.lower() == "authorization"}
        if f.quota:
            self._count("quota")
            return web.json_response({"jsonrpc": "2.0", "id": None, "error": ALCHEMY_QUOTA}, status=429)
        if f.reset_every and n % f.reset_every == 0 and request.transport is not None:
            self._count("reset")
            request.transport.abort()
            return web.Response(status=500)  # never sent: the connection is gone
        if f.rate_limit_every and n % f.rate_limit_every == 0:
            self._count("429")
            headers = {"Retry-After": f.retry_after} if f.retry_after else {}
            return web.json_response({"jsonrpc": "2.0", "id": None, "error": ALCHEMY_429}, status=429,
                                     headers=headers)
        if self._untouched(body):  # nothing to answer differently: the node's reply as it is
            text = await self._forward_raw(await request.read())
        else:
            reply: Any = [await self._one(i) for i in body] if isinstance(body, list) else await self._one(body)
            text = json.dumps(reply)
        if f.truncate_every and n % f.truncate_every == 0:
            self._count("truncated")
            text = text[: len(text) // 2]
        return web.Response(text=text, content_type="application/json")

    def _untouched(self, body: Any) -> bool:
        f = self.faults
        if f.head_lag or f.logs_frozen_at is not None or f.no_finalized:
            return False
        items = body if isinstance(body, list) else [body]
        if f.hidden and any(i.get("method") == "getrawmempool" for i in items):
            return False
        return not any(i.get("method") == "eth_getLogs" and (f.range_cap or f.wrong_log_hashes) for i in items)

    async def _forward_raw(self, body: bytes) -> str:
        assert self._session is not None
        async with self._session.post(self.upstream, data=body,
                                      headers={"Content-Type": "application/json", **self._headers}) as r:
            return await r.text()

    async def _forward(self, item: dict[str, Any]) -> dict[str, Any]:
        assert self._session is not None
        async with self._session.post(self.upstream, json=item, headers=self._headers) as resp:
            return await resp.json(content_type=None)  # type: ignore[no-any-return]

    async def _head(self) -> int:
        return int((await self._forward({"jsonrpc": "2.0", "id": 0, "method": "eth_blockNumber", "params": []}))
                   ["result"], 16)

    async def _one(self, item: dict[str, Any]) -> dict[str, Any]:
        f, method, params = self.faults, item.get("method"), item.get("params") or []
        if method == "eth_getBlockByNumber" and f.no_finalized and params and params[0] == "finalized":
            error = {"code": -39001, "message": "finalized block not found"}
            return {"jsonrpc": "2.0", "id": item["id"], "error": error}
        if method == "getrawmempool" and f.hidden:
            reply = await self._forward(item)
            reply["result"] = [t for t in reply.get("result") or [] if t not in f.hidden]
            return reply
        if method == "eth_getLogs" and params and "fromBlock" in params[0] and f.range_cap:
            lo, hi = int(params[0]["fromBlock"], 16), int(params[0]["toBlock"], 16)
            if hi - lo + 1 > f.range_cap:
                self._count(f"range-{f.cap_style}")
                return {"jsonrpc": "2.0", "id": item["id"], "error": self._range_error(lo, hi)}
        if method == "eth_getLogs" and f.wrong_log_hashes:
            reply = await self._forward(item)
            if reply.get("result"):
                f.wrong_log_hashes -= 1
                self._count("wrong-log-hash")
                reply["result"][0] = {**reply["result"][0], "blockHash": "0x" + "ab" * 32}
            return reply
        seen = (await self._head()) - f.head_lag if f.head_lag else None
        if f.logs_frozen_at is not None and method == "eth_getLogs":
            seen = f.logs_frozen_at if seen is None else min(seen, f.logs_frozen_at)
        if seen is None:
            return await self._forward(item)
        if method == "eth_blockNumber":
            return {"jsonrpc": "2.0", "id": item["id"], "result": hex(seen)}
        if method == "eth_getBlockByNumber" and int(params[0], 16) > seen:
            return {"jsonrpc": "2.0", "id": item["id"], "result": None}
        reply = await self._forward(item)
        if method == "eth_getLogs" and "blockHash" in params[0]:
            block = await self._forward({"jsonrpc": "2.0", "id": 0, "method": "eth_getBlockByHash",
                                         "params": [params[0]["blockHash"], False]})
            if block.get("result") is None or int(block["result"]["number"], 16) > seen:
                return {"jsonrpc": "2.0", "id": item["id"], "error": {"code": -32000, "message": "unknown block"}}
        elif method == "eth_getLogs" and isinstance(reply.get("result"), list):  # the lie: blocks it lacks, empty
            kept = [log for log in reply["result"] if int(log["blockNumber"], 16) <= seen]
            if len(kept) < len(reply["result"]):
                self._count("logs-hidden")
            reply["result"] = kept
        return reply

    def _range_error(self, lo: int, hi: int) -> dict[str, Any]:
        cap = self.faults.range_cap or 1
        if self.faults.cap_style == "infura":  # Infura writes the hex digits in capitals
            a, b = (f"0x{x:X}" for x in (lo, lo + cap - 1))
            return {"code": -32005, "data": {"from": a, "limit": 10000, "to": b},
                    "message": f"query returned more than 10000 results. Try with this block range [{a}, {b}]."}
        if self.faults.cap_style == "alchemy":
            return {"code": -32602, "message": f"Under the Free tier plan, you can make eth_getLogs requests with "
                                               f"up to a {cap} block range. Based on your parameters, this block "
                                               f"range should work: [{hex(lo)}, {hex(lo + cap - 1)}]"}
        return {"code": -32600, "message": "block range is too wide"}


def main() -> None:
    """Run the proxy on its own (the bench puts it in front of its node in another process)."""
    import argparse

    import uvloop

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--range-cap", type=int)
    parser.add_argument("--rate-limit-every", type=int)
    args = parser.parse_args()

    async def serve() -> None:
        proxy = RpcFaultProxy(args.upstream, Faults(range_cap=args.range_cap, rate_limit_every=args.rate_limit_every),
                              port=args.port)
        await proxy.start()
        await asyncio.Event().wait()

    uvloop.run(serve())


if __name__ == "__main__":
    main()
