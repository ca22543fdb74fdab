"""The Bitcoin side of the follower: fetch blocks by height, find outputs paying watched scripts."""

from __future__ import annotations

from beanpay.chains.bitcoin.block import (
    RawBlock,
    may_pay,
    may_spend,
    outpoint,
    parse_tx,
    payments_to,
    read_header,
    spends_of,
)
from beanpay.chains.bitcoin.rpc import BitcoinRpc
from beanpay.indexer.types import FoundDeposit, FoundSpend, MempoolScan

ASSET = "BTC"


class BitcoinSource:
    def __init__(self, rpc: BitcoinRpc) -> None:
        self.rpc = rpc
        self._checked: tuple[int, bool] = (0, False)  # (id of the watched map, all P2WPKH?)
        self.spenders: dict[tuple[str, int], str] = {}  # an output -> the mempool transaction seen spending it

    def _only_p2wpkh(self, watched: dict[bytes, str]) -> bool:
        if self._checked[0] != id(watched):  # the follower builds a new map on each refresh
            self._checked = (id(watched), all(len(s) == 22 and s[:2] == b"\x00\x14" for s in watched))
        return self._checked[1]

    @staticmethod
    def watch_key(address: str, script: bytes | None) -> bytes:
        return script or b""

    def deposits(self, block: RawBlock, watched: dict[bytes, str]) -> list[FoundDeposit]:
        if not watched:
            return []
        if self._only_p2wpkh(watched) and not may_pay(block.raw, watched):
            return []  # the common case: nothing here for us, and no transaction was parsed
        return [FoundDeposit(ASSET, p.txid, p.vout, watched[p.script], p.value)
                for p in payments_to(block.raw, watched)]

    @staticmethod
    def outpoint(txid: str, output_index: int) -> bytes:
        return outpoint(txid, output_index)

    def spends(self, block: RawBlock, outpoints: set[bytes]) -> list[FoundSpend]:
        if not may_spend(block.raw, outpoints):
            return []
        return [FoundSpend(s.prev_txid, s.prev_vout, s.txid) for s in spends_of(block.raw, outpoints)]

    async def close(self) -> None:
        await self.rpc.close()

    async def mempool_deposits(self, watched: dict[bytes, str], known: set[str]) -> MempoolScan:
        """Unconfirmed payments to watched scripts among mempool transactions not in `known` (which is
        updated), so each transaction is fetched once; which outputs every new transaction spends is kept
        (`spenders`), to name what replaced a payment."""
        mempool = await self.rpc.mempool()
        fresh = [t for t in mempool if t not in known]
        if len(self.spenders) > 400_000:  # forget old spends now and then: only naming a replacement needs them
            self.spenders.clear()
        found: list[FoundDeposit] = []
        inputs: dict[str, tuple[tuple[str, int], ...]] = {}
        for i in range(0, len(fresh), 200):
            chunk = fresh[i:i + 200]
            for raw in await self.rpc.raw_transactions(chunk):
                if raw is None:
                    continue
                tx = parse_tx(raw)
                self.spenders.update((spent, tx.txid) for spent in tx.spends)
                paid = [FoundDeposit(ASSET, tx.txid, vout, watched[out.script], out.value)
                        for vout, out in enumerate(tx.outputs) if out.script in watched]
                if paid:
                    found += paid
                    inputs[tx.txid] = tx.spends
            known.update(chunk)
        return MempoolScan(found, inputs, frozenset(mempool))

    async def unspent(self, outpoints: list[tuple[str, int]]) -> list[bool]:
        """Whether each output is unspent in the node's view, its mempool included."""
        return [r is not None for r in await self.rpc.batch([("gettxout", (t, v, True)) for t, v in outpoints])]

    async def tip(self) -> int:
        return await self.rpc.block_count()

    async def finalized(self) -> int | None:
        return None  # proof of work has no final block: finality is by depth

    async def hashes(self, heights: list[int]) -> dict[int, str]:
        return dict(zip(heights, await self.rpc.block_hashes(heights), strict=True))

    async def blocks(self, heights: list[int]) -> list[tuple[int, RawBlock]]:
        """Blocks at `heights`: two batched round trips; headers read, bodies parsed on demand."""
        hashes = await self.rpc.block_hashes(heights)
        raws = await self.rpc.raw_blocks(hashes)
        blocks = [read_header(raw) for raw in raws]
        for expected, block in zip(hashes, blocks, strict=True):
            if block.hash != expected:  # never trust the node blindly
                raise ValueError(f"node returned block {block.hash} for hash {expected}")
        return list(zip(heights, blocks, strict=True))
