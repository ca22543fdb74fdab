"""What the benchmarks share to run their own private nodes on loopback."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from beanpay.deploy.endpoint import free_port

__all__ = ["free_port", "place_orders", "until_answering"]


async def until_answering(probe: Callable[[], Awaitable[Any]], *, tries: int = 100, pause: float = 0.1) -> None:
    """Call `probe` until it succeeds: a node just started is not listening yet."""
    for _ in range(tries - 1):
        try:
            await probe()
            return
        except Exception:
            await asyncio.sleep(pause)
    await probe()  # the last try raises what is wrong


async def group_at_end(bootstrap: str, group: str, topics: tuple[str, ...]) -> None:
    """Commit a new consumer group's offsets at the topics' current ends, so the fan-out it is given to
    starts at now: a long-lived dev stack's topics hold every event of every earlier run."""
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(list(topics))
    finally:
        await admin.close()
    partitions = [TopicPartition(t["topic"], p["partition"]) for t in described for p in t["partitions"]]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        if partitions:
            ends = await consumer.end_offsets(partitions)
            consumer.assign(partitions)
            await consumer.commit(dict(ends))
    finally:
        await consumer.stop()


# The rate limiter stays on in the benches (its cost is part of every figure), with budgets no load run
# reaches: one client address sending thousands of requests a second is the load tool, not an abuser.
UNLIMITED_BUDGETS = {f"BEANPAY_RATE_LIMIT_{name}": "1000000000"
                     for name in ("PUBLIC_ORDERS", "ANONYMOUS", "PRINCIPAL", "API_KEY")}


async def place_orders(base: str, body: dict[str, Any], n: int,
                       check: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """`n` orders of `body` through the API at `base`, 16 at a time, each `check`ed as it is answered."""
    placed: list[dict[str, Any]] = []
    gate = asyncio.Semaphore(16)
    async with aiohttp.ClientSession() as session:
        async def one() -> None:
            async with gate, session.post(f"{base}/v1/orders", json=body,
                                          headers={"Idempotency-Key": uuid.uuid4().hex}) as r:
                assert r.status == 201, await r.text()
                order = await r.json()
                if check is not None:
                    check(order)
                placed.append(order)
        await asyncio.gather(*(one() for _ in range(n)))
    return placed
