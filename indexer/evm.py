"""The EVM side of the follower: native ETH (plain and internal transfers) and ERC-20 Transfer logs.

Failed transactions never count: a call frame that reverted (or sits under one that did) is
skipped, logs exist only for successful transactions, and without traces plain transfers are
checked against their receipts.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from beanpay.chains.endpoints import EndpointState
from beanpay.chains.evm.rpc import TRANSFER_TOPIC, Block, CallFrame, EvmRpc, Log, bloom_may_contain
from beanpay.config import EvmChainConfig
from beanpay.indexer.types import FoundDeposit, FoundSpend

NATIVE = "ETH"
TOPIC = bytes.fromhex(TRANSFER_TOPIC[2:])


@dataclass(frozen=True, slots=True)
class EthTransfer:
    txid: str
    index: int  # the call frame's position in the transaction (0 = the transaction itself)
    to: str  # lower-case hex
    value: int


@dataclass(frozen=True, slots=True)
class TokenTransfer:
    txid: str
    log_index: int
    token: str  # lower-case contract address
    to: str
    amount: int


@dataclass(frozen=True, slots=True)
class EvmBlock:
    hash: str
    prev_hash: str
    eth: tuple[EthTransfer, ...] = ()
    tokens: tuple[TokenTransfer, ...] = field(default_factory=tuple)


def successful_value_calls(frame: CallFrame, txid: str) -> Iterator[EthTransfer]:
    """Value-carrying frames of a call tree, depth-first, skipping any subtree that reverted. A frame's
    index is its position among all frames, reverted ones included, so it names the same frame always."""
    counter = 0

    def walk(f: CallFrame, reverted: bool) -> Iterator[EthTransfer]:
        nonlocal counter
        index = counter
        counter += 1
        reverted = reverted or f.error is not None
        value = int(f.value, 16) if f.value else 0
        if not reverted and value > 0 and f.to and f.type in ("CALL", "CREATE", "CREATE2", "SELFDESTRUCT"):
            yield EthTransfer(txid, index, f.to.lower(), value)
        for child in f.calls:
            yield from walk(child, reverted)

    yield from walk(frame, False)


def token_transfer(log: Log) -> TokenTransfer | None:
    if log.removed or len(log.topics) != 3:
        return None  # ERC-721 Transfer has 4 topics; anything else is not an ERC-20 transfer
    return TokenTransfer(log.transactionHash, int(log.logIndex, 16), log.address.lower(),
                         "0x" + log.topics[2][-40:].lower(), int(log.data, 16) if log.data != "0x" else 0)


def find_deposits(block: EvmBlock, watched: dict[str, str], symbols: dict[str, str]) -> list[FoundDeposit]:
    """Transfers to watched addresses (keys lower-case). Pure."""
    found = [FoundDeposit(NATIVE, t.txid, t.index, watched[t.to], t.value)
             for t in block.eth if t.to in watched and t.value > 0]
    found += [FoundDeposit(symbols[t.token], t.txid, t.log_index, watched[t.to], t.amount)
              for t in block.tokens if t.to in watched and t.amount > 0 and t.token in symbols]
    return found


class EvmSource:
    def __init__(self, config: EvmChainConfig, rpc: EvmRpc) -> None:
        self.config = config
        self.rpc = rpc
        self.symbols = {t.address.lower(): t.symbol for t in config.tokens}

    @staticmethod
    def watch_key(address: str, script: bytes | None) -> str:
        return address.lower()

    def deposits(self, block: EvmBlock, watched: dict[str, str]) -> list[FoundDeposit]:
        return find_deposits(block, watched, self.symbols)

    @staticmethod
    def outpoint(txid: str, output_index: int) -> None:
        return None  # accounts, not outputs: balances are read from the node

    def spends(self, block: EvmBlock, outpoints: set[object]) -> list[FoundSpend]:
        return []

    async def tip(self) -> int:
        return await self.rpc.block_number()

    async def finalized(self) -> int | None:
        return await self.rpc.finalized() if self.config.finality == "tag" else None

    def endpoint_health(self) -> list[tuple[EndpointState, str]]:
        """Each RPC endpoint as the last requests left it (for `beanpay chain status`)."""
        return self.rpc.pool.health()

    async def hashes(self, heights: list[int]) -> dict[int, str]:
        return {h: b.hash for h, b in zip(heights, await self.rpc.headers(heights), strict=True)}

    async def blocks(self, heights: list[int]) -> list[tuple[int, EvmBlock]]:
        raw = await self.rpc.blocks(heights)
        logs = await self.rpc.transfer_logs(heights[0], heights[-1], list(self.symbols))
        by_hash: dict[str, list[Log]] = {b.hash: [] for b in raw}
        for log in logs:
            if log.blockHash not in by_hash:
                raise LookupError("logs and blocks disagree: the chain moved between calls; retry")
            by_hash[log.blockHash].append(log)
        for height, b in zip(heights, raw, strict=True):
            if self._missing_logs(b, by_hash[b.hash]):  # the range's answer did not cover this block: ask by hash,
                for _ in range(min(2, len(self.rpc.pool.states))):  # of a second endpoint too if the first finds none
                    by_hash[b.hash] = await self.rpc.logs_by_hash(b.hash, height, list(self.symbols))
                    if by_hash[b.hash]:
                        break
                if any(log.blockHash != b.hash for log in by_hash[b.hash]):
                    raise LookupError(f"logs asked by block hash {b.hash} name another block")
        tokens = {h: tuple(t for log in found if (t := token_transfer(log)) is not None)
                  for h, found in by_hash.items()}
        if self.config.traces:
            traces = await self.rpc.traces(heights)
            if any(len(t) != len(b.transactions) for t, b in zip(traces, raw, strict=True)):
                raise LookupError("traces and blocks disagree: the chain moved between calls; retry")
            eth = [tuple(t for tr, tx in zip(block_traces, b.transactions, strict=True) if tr.result is not None
                         for t in successful_value_calls(tr.result, tx.hash))
                   for b, block_traces in zip(raw, traces, strict=True)]
        else:
            eth = await self._plain_transfers(raw, heights[-1])
        return [(h, EvmBlock(b.hash, b.parentHash, e, tokens[b.hash]))
                for h, b, e in zip(heights, raw, eth, strict=True)]

    def _missing_logs(self, block: Block, logs: list[Log]) -> bool:
        """Whether the block's bloom says a watched token's Transfer may be in it while none of that token's
        came back: a backend that had not got the block yet answers a range with nothing."""
        if block.logsBloom is None:
            return False
        answered = {log.address.lower() for log in logs}
        return any(token not in answered and bloom_may_contain(block.logsBloom, bytes.fromhex(token[2:]), TOPIC)
                   for token in self.symbols)

    async def _plain_transfers(self, raw: list[Block], last: int) -> list[tuple[EthTransfer, ...]]:
        """Without traces: top-level transfers only, each checked against its receipt."""
        candidates = [(i, tx) for i, b in enumerate(raw) for tx in b.transactions
                      if tx.to and int(tx.value, 16) > 0]
        receipts = await self.rpc.receipts([tx.hash for _, tx in candidates], covers=last)
        ok = {r.transactionHash for r in receipts if int(r.status, 16) == 1}
        out: list[list[EthTransfer]] = [[] for _ in raw]
        for i, tx in candidates:
            if tx.hash in ok and tx.to is not None:
                out[i].append(EthTransfer(tx.hash, 0, tx.to.lower(), int(tx.value, 16)))
        return [tuple(x) for x in out]

    async def close(self) -> None:
        await self.rpc.close()
