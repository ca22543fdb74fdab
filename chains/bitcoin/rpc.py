"""Bitcoin node RPC, tested against btcd and written to Bitcoin Core's API.

btcd closes the connection after every response, so connections are not reused; it caps RPC
clients (we raise the cap in the local stack), so concurrency is bounded.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal

import aiohttp

from beanpay.chains.jsonrpc import JsonRpcClient, RpcError, RpcUnavailable

__all__ = ["BitcoinRpc", "RpcError", "RpcUnavailable"]


class BitcoinRpc(JsonRpcClient):
    def __init__(self, url: str, user: str, password: str, *, timeout: float = 30.0, retries: int = 4) -> None:
        super().__init__(url, auth=aiohttp.BasicAuth(user, password), version="1.0", keepalive=False,
                         timeout=timeout, retries=retries)

    async def block_count(self) -> int:
        return int(await self.call("getblockcount"))

    async def block_hashes(self, heights: list[int]) -> list[str]:
        return [str(h) for h in await self.batch([("getblockhash", (h,)) for h in heights])]

    async def mempool(self) -> list[str]:
        return [str(t) for t in await self.call("getrawmempool")]

    async def raw_transactions(self, txids: list[str]) -> list[bytes | None]:
        """Raw transactions; None for one that left the mempool meanwhile."""
        replies = await self.batch([("getrawtransaction", (t, 0)) for t in txids], errors_as_values=True)
        return [bytes.fromhex(r) if isinstance(r, str) else None for r in replies]

    async def fee_rate(self, target_blocks: int, floor: int) -> int:
        """sat/vB to confirm within `target_blocks`: Bitcoin Core's estimatesmartfee, else btcd's
        estimatefee (BTC per kB), never below `floor` (regtest nodes estimate nothing useful)."""
        try:
            reply = await self.call("estimatesmartfee", target_blocks)
            per_kvb = reply.get("feerate") if isinstance(reply, dict) else None
        except RpcError:
            per_kvb = await self.call("estimatefee", target_blocks)
        if not isinstance(per_kvb, Decimal) or per_kvb <= 0:
            return floor
        return max(floor, int((per_kvb * 100_000_000 / 1000).to_integral_value(rounding=ROUND_CEILING)))

    async def unspent(self, txid: str, vout: int) -> bool:
        """Whether the output is unspent in the node's view, its mempool included."""
        return await self.call("gettxout", txid, vout, True) is not None

    async def broadcast(self, raw_hex: str) -> str:
        return str(await self.call("sendrawtransaction", raw_hex))

    async def raw_blocks(self, hashes: list[str]) -> list[bytes]:
        return [bytes.fromhex(h) for h in await self.batch([("getblock", (h, 0)) for h in hashes])]
