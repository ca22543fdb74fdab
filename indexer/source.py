"""What the follower needs from a chain's node, whatever the chain."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, Protocol, runtime_checkable

from beanpay.indexer.types import FoundDeposit, FoundSpend, MempoolScan


class ChainBlock(Protocol):
    @property
    def hash(self) -> str: ...

    @property
    def prev_hash(self) -> str: ...


class Source(Protocol):
    def watch_key(self, address: str, script: bytes | None) -> Hashable:
        """How a watched address is matched in this chain's blocks (script bytes, lower-case hex...)."""

    def deposits(self, block: Any, watched: Any) -> list[FoundDeposit]: ...

    def spends(self, block: Any, outpoints: set[Any]) -> list[FoundSpend]:
        """Inputs spending recorded outputs (`outpoint` keys), where the chain has outputs to spend."""

    def outpoint(self, txid: str, output_index: int) -> Hashable | None:
        """How a recorded output is named by an input spending it; None: this chain has no such thing."""

    async def tip(self) -> int: ...

    async def finalized(self) -> int | None:
        """The node's finalized block, where the chain is configured to follow it and the node tells it."""

    async def hashes(self, heights: list[int]) -> dict[int, str]: ...

    async def blocks(self, heights: list[int]) -> list[tuple[int, Any]]: ...

    async def close(self) -> None: ...


@runtime_checkable
class MempoolSource(Protocol):
    """A chain whose node shows its mempool (Bitcoin): payments are seen before they are mined."""

    spenders: dict[tuple[str, int], str]  # an output -> the mempool transaction seen spending it

    async def mempool_deposits(self, watched: Any, known: set[str]) -> MempoolScan: ...

    async def unspent(self, outpoints: list[tuple[str, int]]) -> list[bool]: ...

    async def tip(self) -> int: ...
