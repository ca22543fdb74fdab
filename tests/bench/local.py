"""What the benchmarks share to run their own private nodes on loopback."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def until_answering(probe: Callable[[], Awaitable[Any]], *, tries: int = 100, pause: float = 0.1) -> None:
    """Call `probe` until it succeeds: a node just started is not listening yet."""
    for _ in range(tries - 1):
        try:
            await probe()
            return
        except Exception:
            await asyncio.sleep(pause)
    await probe()  # the last try raises what is wrong
