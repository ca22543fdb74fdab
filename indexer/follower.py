"""One follower per chain: catch up, detect reorgs, keep one leader per chain.

Fetching is batched and runs up to PREFETCH_BATCHES ahead of matching and writing; writing is
sequential, one transaction per batch while catching up and per block at the tip (see store.py).
Leadership is a Postgres advisory lock held on a dedicated connection: a second follower for the
same chain waits, and takes over when the first one dies. Should two ever write at once (a lock
connection lost unnoticed), the checkpoint's compare-and-set in store.apply_blocks refuses the loser.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import structlog
from prometheus_client import Counter, Gauge

from beanpay.db import Pool, transaction
from beanpay.indexer import store
from beanpay.indexer.reconcile import fork_point
from beanpay.indexer.source import ChainBlock, Source

log = structlog.get_logger("indexer")

NODE_TIP = Gauge("beanpay_indexer_node_tip", "Node tip height", ["chain"])
INDEXED_TIP = Gauge("beanpay_indexer_indexed_tip", "Indexed tip height", ["chain"])
LAG = Gauge("beanpay_indexer_lag_blocks", "Node tip minus indexed tip", ["chain"])
BLOCKS = Counter("beanpay_indexer_blocks_total", "Blocks applied", ["chain"])
DEPOSITS = Counter("beanpay_indexer_deposits_total", "Deposits found", ["chain"])
REORGS = Counter("beanpay_indexer_reorgs_total", "Reorgs handled", ["chain"])


FULL_RELOAD_SECONDS = 600.0
PREFETCH_BATCHES = 1  # batches queued for the writer; with the one being fetched and the one being written, 3 in memory
WATCH_OVERLAP = dt.timedelta(minutes=5)


class LostLeadership(Exception):
    pass


@dataclass(frozen=True)
class ChainPolicy:
    chain: str
    confirmations: int
    finality_depth: int
    poll_seconds: float
    batch_blocks: int
    start_height: int | None


@contextlib.asynccontextmanager
async def leadership(dsn: str, chain: str, *, poll: float = 1.0) -> AsyncIterator[asyncpg.Connection]:
    """Hold the chain's advisory lock for the duration; wait for it while another follower leads."""
    conn: asyncpg.Connection = await asyncpg.connect(dsn)
    try:
        waiting_logged = False
        while not await conn.fetchval(
                "SELECT pg_try_advisory_lock(hashtext('beanpay.indexer'), hashtext($1))", chain):
            if not waiting_logged:
                log.info("another follower leads this chain; waiting", chain=chain)
                waiting_logged = True
            await asyncio.sleep(poll)
        log.info("leading", chain=chain)
        yield conn
    finally:
        await conn.close()  # closing the session releases the lock


class Follower:
    def __init__(self, policy: ChainPolicy, pool: Pool, source: Source) -> None:
        self.policy = policy
        self.pool = pool
        self.source = source
        self._watched: dict[Any, str] = {}
        self._newest: dt.datetime | None = None  # created_at of the newest watched address seen
        self._full_at = 0.0
        self._mempool_known: set[str] = set()

    async def _ensure_started(self, node_tip: int) -> store.Cursor:
        async with self.pool.acquire() as conn:
            cur = await store.cursor(conn, self.policy.chain)
        if cur is not None:
            return cur
        start = node_tip if self.policy.start_height is None else min(self.policy.start_height, node_tip)
        after = max(start - 1, 0)
        (_, block), = await self.source.blocks([after])  # ask the node before opening a transaction
        async with transaction(self.pool) as conn:
            await store.start_at(conn, self.policy.chain, after, block.hash, block.prev_hash)  # no-op if raced
            cur = await store.cursor(conn, self.policy.chain)
        log.info("index started", chain=self.policy.chain, after_height=cur.tip_height if cur else after)
        return cur or store.Cursor(after, block.hash)

    async def _refresh_watched(self) -> None:
        """New watched addresses, read incrementally (with an overlap, since a transaction commits after
        the time it stamps), and all of them again every few minutes."""
        full = self._newest is None or time.monotonic() - self._full_at > FULL_RELOAD_SECONDS
        since = None if full or self._newest is None else self._newest - WATCH_OVERLAP
        async with self.pool.acquire() as conn:
            rows = await store.watched(conn, self.policy.chain, since)
        found = {self.source.watch_key(address, script): address for address, script, _ in rows}
        if full:
            self._watched, self._full_at = found, time.monotonic()
        elif found.keys() - self._watched.keys():
            self._watched = {**self._watched, **found}  # a new map: sources may memoize by identity
        if rows:
            self._newest = max(self._newest or rows[0][2], *(created for _, _, created in rows))

    async def sync(self, until: int | None = None) -> int:
        """Apply blocks up to the node's tip (or `until`); return how many were applied."""
        chain = self.policy.chain
        node_tip = await self.source.tip()
        target = node_tip if until is None else min(until, node_tip)
        NODE_TIP.labels(chain).set(node_tip)
        # Read after the tip: a block up to the target was mined before now, so it can only pay an address
        # handed out before now. Addresses handed out later can only be paid in later blocks (next sync).
        await self._refresh_watched()
        cur = await self._ensure_started(node_tip)
        if node_tip < cur.tip_height or (await self.source.hashes([cur.tip_height]))[cur.tip_height] != cur.tip_hash:
            await self._handle_reorg()  # our tip left the node's chain (it may even have got shorter)
            async with self.pool.acquire() as conn:
                cur = await store.cursor(conn, chain) or cur
        applied = 0
        while cur.tip_height < target:
            cur, count = await self._catch_up(cur, target)
            applied += count
            if cur.tip_height < target:  # a block did not follow: the node's chain changed
                await self._handle_reorg()
                async with self.pool.acquire() as conn:
                    cur = await store.cursor(conn, chain) or cur
        await self._scan_mempool()
        INDEXED_TIP.labels(chain).set(cur.tip_height)
        LAG.labels(chain).set(max(0, node_tip - cur.tip_height))
        async with self.pool.acquire() as conn:
            await conn.execute("UPDATE chain_cursors SET node_tip_height = $2 WHERE chain = $1", chain, node_tip)
        return applied

    async def _scan_mempool(self) -> None:
        """Where the chain has a mempool we can read (Bitcoin), record unconfirmed payments as `seen`."""
        scan = getattr(self.source, "mempool_deposits", None)
        if scan is None:
            return
        await self._refresh_watched()
        if len(self._mempool_known) > 200_000:  # forget old txids now and then; re-checking is harmless
            self._mempool_known.clear()
        found = await scan(self._watched, self._mempool_known)
        if found:
            async with transaction(self.pool) as conn:
                await store.record_seen(conn, self.policy.chain, found)

    async def _catch_up(self, cur: store.Cursor, target: int) -> tuple[store.Cursor, int]:
        """Apply blocks after `cur` up to `target`, or up to the first that does not follow the one before.
        Returns the new cursor and how many blocks were applied.

        A fetcher task keeps one request to the node in flight at all times, up to PREFETCH_BATCHES
        ahead, while this task matches deposits and writes: the node serializes the next blocks while
        we work on the last ones, so catch-up runs at the node's pace rather than at the sum of both.
        """
        ahead: asyncio.Queue[list[tuple[int, ChainBlock]] | Exception] = asyncio.Queue(PREFETCH_BATCHES)

        async def fetch_ahead() -> None:
            lo = cur.tip_height + 1
            try:
                while lo <= target:
                    hi = min(lo + self.policy.batch_blocks - 1, target)
                    await ahead.put(await self.source.blocks(list(range(lo, hi + 1))))
                    lo = hi + 1
            except Exception as exc:  # handed to the writer, which raises it
                await ahead.put(exc)

        fetcher = asyncio.create_task(fetch_ahead())
        applied = 0
        try:
            while cur.tip_height < target:
                fetched = await ahead.get()
                if isinstance(fetched, Exception):
                    raise fetched
                linked: list[store.BlockChanges] = []
                for height, block in fetched:
                    if block.prev_hash != (linked[-1].hash if linked else cur.tip_hash):
                        break
                    linked.append(store.BlockChanges(height, block.hash, block.prev_hash,
                                                     self.source.deposits(block, self._watched)))
                    await asyncio.sleep(0)  # let the fetcher send its next request now, not after the batch
                if linked:
                    await self._apply(linked)
                    cur = store.Cursor(linked[-1].height, linked[-1].hash)
                    applied += len(linked)
                if len(linked) < len(fetched):
                    break
        finally:
            fetcher.cancel()
        return cur, applied

    async def _apply(self, changes: list[store.BlockChanges]) -> None:
        async with transaction(self.pool) as conn:
            await store.apply_blocks(conn, self.policy.chain, changes, required_confirmations=self.policy.confirmations,
                                     finality_depth=self.policy.finality_depth)
        BLOCKS.labels(self.policy.chain).inc(len(changes))
        DEPOSITS.labels(self.policy.chain).inc(sum(len(c.deposits) for c in changes))

    async def _handle_reorg(self) -> None:
        chain = self.policy.chain
        async with self.pool.acquire() as conn:
            stored = await store.window(conn, chain)
        node_tip = await self.source.tip()
        heights = [h for h in sorted(stored) if h <= node_tip]
        node = await self.source.hashes(heights) if heights else {}
        ancestor = fork_point(stored, node)
        async with transaction(self.pool) as conn:
            orphaned = await store.rewind(conn, chain, ancestor, reason="reorg detected")
        REORGS.labels(chain).inc()
        log.warning("reorg", chain=chain, common_ancestor=ancestor, depth=max(stored) - ancestor,
                    orphaned_deposits=len(orphaned))

    async def run(self, dsn: str, stop: asyncio.Event) -> None:
        async with leadership(dsn, self.policy.chain) as lock_conn:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    await self.sync()
                except Exception as exc:  # the node or the database hiccuped: log, back off, go on
                    log.warning("sync failed; retrying", chain=self.policy.chain, error=repr(exc))
                try:
                    await lock_conn.execute("SELECT 1")
                except (asyncpg.PostgresError, OSError) as exc:
                    raise LostLeadership(f"{self.policy.chain}: lock connection lost") from exc
                delay = max(0.0, self.policy.poll_seconds - (time.monotonic() - started))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
