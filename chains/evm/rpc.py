"""EVM node JSON-RPC for the indexer's hot path: typed, batched, validated at the edge.

web3's AsyncWeb3 is used for contract calls and transactions (see sweeps and tests); block
fetching uses plain batched JSON-RPC here, decoded straight into msgspec Structs.
"""

from __future__ import annotations

from typing import Any

import msgspec

from beanpay.chains.jsonrpc import JsonRpcClient

TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"


class Tx(msgspec.Struct):
    hash: str
    to: str | None = None
    value: str = "0x0"


class Header(msgspec.Struct):
    number: str
    hash: str
    parentHash: str  # the node's field names, kept as they are


class Block(Header):
    transactions: list[Tx] = []


class Log(msgspec.Struct):
    address: str
    topics: list[str]
    data: str
    blockHash: str
    blockNumber: str
    transactionHash: str
    logIndex: str
    removed: bool = False


class CallFrame(msgspec.Struct):
    type: str = "CALL"
    to: str | None = None
    value: str | None = None
    error: str | None = None
    calls: list[CallFrame] = []


class TxTrace(msgspec.Struct):
    txHash: str | None = None
    result: CallFrame | None = None


class Receipt(msgspec.Struct):
    transactionHash: str
    status: str


def _convert(value: Any, kind: type[Any]) -> Any:
    return msgspec.convert(value, kind)


class EvmRpc(JsonRpcClient):
    def __init__(self, url: str, *, timeout: float = 30.0, retries: int = 4) -> None:
        super().__init__(url, keepalive=True, timeout=timeout, retries=retries)

    async def block_number(self) -> int:
        return int(await self.call("eth_blockNumber"), 16)

    async def _by_number(self, heights: list[int], full: bool) -> list[Any]:
        replies = await self.batch([("eth_getBlockByNumber", (hex(h), full)) for h in heights])
        if any(r is None for r in replies):
            raise LookupError("the node does not have one of the requested blocks (yet)")
        return replies

    async def headers(self, heights: list[int]) -> list[Header]:
        return [_convert(r, Header) for r in await self._by_number(heights, False)]

    async def blocks(self, heights: list[int]) -> list[Block]:
        """Blocks with their transactions."""
        return [_convert(r, Block) for r in await self._by_number(heights, True)]

    async def transfer_logs(self, start: int, end: int, tokens: list[str]) -> list[Log]:
        if not tokens:
            return []
        logs = await self.call("eth_getLogs", {"fromBlock": hex(start), "toBlock": hex(end), "address": tokens,
                                               "topics": [TRANSFER_TOPIC]})
        return [_convert(entry, Log) for entry in logs]

    async def traces(self, heights: list[int]) -> list[list[TxTrace]]:
        replies = await self.batch([("debug_traceBlockByNumber", (hex(h), {"tracer": "callTracer"}))
                                    for h in heights])
        return [[_convert(t, TxTrace) for t in reply] for reply in replies]

    async def receipts(self, tx_hashes: list[str]) -> list[Receipt]:
        replies = await self.batch([("eth_getTransactionReceipt", (h,)) for h in tx_hashes])
        return [_convert(r, Receipt) for r in replies]
