"""EVM node JSON-RPC for the indexer's hot path: typed, batched, validated at the edge, over one endpoint
or several (chains/endpoints.py).

web3's AsyncWeb3 is used for contract calls and transactions (see sweeps and tests); block fetching uses
plain batched JSON-RPC here, decoded straight into msgspec Structs. `eth_getLogs` goes in ranges each
endpoint accepts (chains/evm/getlogs.py), and every block whose bloom says a watched token's Transfer may be
in it, yet whose range answer had none, is asked again by its hash (EIP-234): a lagging backend that answers
a range with `[]` cannot hide a payment.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
from eth_utils.crypto import keccak

from beanpay.chains.endpoints import Endpoint, EndpointState, NotYet, RpcPool
from beanpay.chains.evm.getlogs import narrower_span
from beanpay.chains.jsonrpc import JsonRpcClient, RpcError, display_url

TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
GROW_AFTER = 50  # requests at an endpoint's remembered getLogs span before trying a wider one again


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
    logsBloom: str | None = None


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


def bloom_may_contain(bloom: str, *items: bytes) -> bool:
    """Whether a block's logs bloom (2048 bits, hex) may hold every item (an address, a topic); False is
    certain, True may be a false positive."""
    bits = int(bloom, 16)
    for item in items:
        digest = keccak(item)
        if any(not (bits >> (((digest[i] << 8) | digest[i + 1]) & 2047)) & 1 for i in (0, 2, 4)):
            return False
    return True


class EvmRpc:
    def __init__(self, url: str | Sequence[Endpoint], *, chain: str = "evm", timeout: float = 30.0,
                 retries: int = 4, max_lag: int = 8, logs_max_blocks: int | None = None,
                 chain_id: int | None = None) -> None:
        endpoints = [Endpoint(url)] if isinstance(url, str) else list(url)
        # several endpoints: fail over at once rather than retry one that is away
        tries = retries if len(endpoints) == 1 else 1
        self.pool = RpcPool(chain, endpoints, lambda e, name: JsonRpcClient(e.url, timeout=timeout, retries=tries,
                                                                             name=name),
                            ("eth_blockNumber", lambda r: int(r, 16)), max_lag=max_lag,
                            identity=None if chain_id is None else ("eth_chainId", hex(chain_id)))
        self.url = endpoints[0].url
        self.logs_max_blocks = logs_max_blocks
        self._at_span: dict[str, int] = {}  # requests made at each endpoint's remembered span

    def __repr__(self) -> str:
        return f"EvmRpc({', '.join(display_url(c.url) for c in self.pool.clients)})"

    async def call(self, method: str, *params: Any) -> Any:
        return await self.pool.call(method, *params)

    async def batch(self, calls: list[tuple[str, tuple[Any, ...]]]) -> list[Any]:
        return await self.pool.batch(calls)

    async def close(self) -> None:
        await self.pool.close()

    async def block_number(self) -> int:
        """The best head among the endpoints (those lagging behind it leave the rotation)."""
        return await self.pool.head()

    async def finalized(self) -> int | None:
        """The `finalized` block's height (post-merge Ethereum and most L2s); None where the node has no such tag."""
        async def ask(client: JsonRpcClient, _: EndpointState) -> Any:
            try:
                return await client.call("eth_getBlockByNumber", "finalized", False)
            except RpcError:  # "invalid block number", "finalized block not found": a node without finality
                return None  # an answer, not the endpoint failing

        block = await self.pool.run("eth_getBlockByNumber", ask)
        return int(block["number"], 16) if isinstance(block, dict) else None

    async def _by_number(self, heights: list[int], full: bool) -> list[Any]:
        async def fetch(client: JsonRpcClient, _: EndpointState) -> list[Any]:
            replies = await client.batch([("eth_getBlockByNumber", (hex(h), full)) for h in heights])
            if any(r is None for r in replies):
                raise NotYet(f"{client.name} does not have one of blocks {heights[0]}..{heights[-1]} (yet)")
            return replies
        return await self.pool.run("eth_getBlockByNumber", fetch, covers=max(heights))

    async def headers(self, heights: list[int]) -> list[Header]:
        return [_convert(r, Header) for r in await self._by_number(heights, False)]

    async def blocks(self, heights: list[int]) -> list[Block]:
        """Blocks with their transactions."""
        return [_convert(r, Block) for r in await self._by_number(heights, True)]

    async def transfer_logs(self, start: int, end: int, tokens: list[str]) -> list[Log]:
        """Transfer logs of `tokens` in blocks start..end, in ranges each endpoint takes: a refused range is cut
        to what the endpoint says it allows (remembered per endpoint, widened again now and then). Every range
        must be answered before any log is returned, so a block is never half scanned."""
        if not tokens:
            return []
        found: list[Any] = []
        lo = start
        while lo <= end:
            async def from_lo(client: JsonRpcClient, state: EndpointState, at: int = lo) -> tuple[list[Any], int]:
                return await self._logs_from(client, state, at, end, tokens)
            got, lo = await self.pool.run("eth_getLogs", from_lo, covers=end)
            found += got
        return [_convert(entry, Log) for entry in found]

    async def _logs_from(self, client: JsonRpcClient, state: EndpointState, lo: int, end: int,
                         tokens: list[str]) -> tuple[list[Any], int]:
        """As many ranges from `lo` as this endpoint takes in one go: (their logs, where the next starts)."""
        span = min(x for x in (state.logs_span, self.logs_max_blocks, end - lo + 1) if x is not None)
        done = self._at_span.get(state.name, 0)
        if state.logs_span is not None and done >= GROW_AFTER:  # caps change with plans: try a wider one now and then
            span = min(x for x in (span * 2, self.logs_max_blocks, end - lo + 1) if x is not None)
            self._at_span[state.name] = 0
        hi = lo + span - 1
        try:
            logs = await client.call("eth_getLogs", {"fromBlock": hex(lo), "toBlock": hex(hi), "address": tokens,
                                                     "topics": [TRANSFER_TOPIC]})
        except RpcError as exc:
            narrower = narrower_span(exc.message, span)
            if narrower is None:
                raise
            state.logs_span = narrower
            self._at_span[state.name] = 0
            return [], lo
        if state.logs_span is not None:
            if span > state.logs_span:
                state.logs_span = span
            self._at_span[state.name] = self._at_span.get(state.name, 0) + 1
        return list(logs), hi + 1

    async def logs_by_hash(self, block_hash: str, height: int, tokens: list[str]) -> list[Log]:
        """One block's Transfer logs, asked by its hash: an endpoint that does not have that block errs
        instead of answering an empty list."""
        logs = await self.pool.call("eth_getLogs", {"blockHash": block_hash, "address": tokens,
                                                    "topics": [TRANSFER_TOPIC]}, covers=height)
        return [_convert(entry, Log) for entry in logs]

    async def traces(self, heights: list[int]) -> list[list[TxTrace]]:
        replies = await self.pool.batch([("debug_traceBlockByNumber", (hex(h), {"tracer": "callTracer"}))
                                         for h in heights], covers=max(heights))
        return [[_convert(t, TxTrace) for t in reply] for reply in replies]

    async def receipts(self, tx_hashes: list[str], covers: int | None = None) -> list[Receipt]:
        replies = await self.pool.batch([("eth_getTransactionReceipt", (h,)) for h in tx_hashes], covers=covers)
        if any(r is None for r in replies):
            raise NotYet("a receipt of a mined transaction is missing: the endpoint lags")
        return [_convert(r, Receipt) for r in replies]
