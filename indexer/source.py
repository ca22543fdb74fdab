"""What the follower needs from a chain's node, whatever the chain."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, Protocol

from beanpay.indexer.types import FoundDeposit


class ChainBlock(Protocol):
    @property
    def hash(self) -> str: ...

    @property
    def prev_hash(self) -> str: ...


class Source(Protocol):
    def watch_key(self, address: str, script: bytes | None) -> Hashable:
        """How a watched address is matched in this chain's blocks (script bytes, lower-case hex...)."""

    def deposits(self, block: Any, watched: Any) -> list[FoundDeposit]: ...

    async def tip(self) -> int: ...

    async def hashes(self, heights: list[int]) -> dict[int, str]: ...

    async def blocks(self, heights: list[int]) -> list[tuple[int, Any]]: ...

    async def close(self) -> None: ...
