"""One follower per chain: catch up, detect reorgs, keep one leader per chain.

Fetching is batched and runs up to PREFETCH_BATCHES ahead of matching and writing; writing is
sequential, one transaction per batch while catching up and per block at the tip (see store.py).
Leadership is a Postgres advisory lock held on a dedicated connection: a second follower for the
same chain waits, and takes over when the first one dies. Should two ever write at once (a lock
connection lost unnoticed), the checkpoint's compare-and-set in store.apply_blocks refuses the loser.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, NoReturn

import asyncpg
import structlog
from prometheus_client import Counter, Gauge

from beanpay.db import RIDE_OUT, Pool
from beanpay.indexer import store
from beanpay.indexer.reconcile import UnrecoverableReorg, fork_point
from beanpay.indexer.replacements import ABSENT_SCANS, Absences, Verdict, conflict, judge
from beanpay.indexer.source import ChainBlock, MempoolSource, Source
from beanpay.indexer.types import BlockChanges, Cursor, MempoolScan
from beanpay.leadership import leadership
from beanpay.listen import Backoff, sleep

log = structlog.get_logger("indexer")

NODE_TIP = Gauge("beanpay_indexer_node_tip", "Node tip height", ["chain"])
INDEXED_TIP = Gauge("beanpay_indexer_indexed_tip", "Indexed tip height", ["chain"])
LAG = Gauge("beanpay_indexer_lag_blocks", "Node tip minus indexed tip", ["chain"])
BLOCKS = Counter("beanpay_indexer_blocks_total", "Blocks applied", ["chain"])
DEPOSITS = Counter("beanpay_indexer_deposits_total", "Deposits found", ["chain"])
REORGS = Counter("beanpay_indexer_reorgs_total", "Reorgs handled", ["chain"])
LEADING = Gauge("beanpay_indexer_leading", "1 while this process leads the chain and its last sync worked",
                ["chain"])
GONE = Counter("beanpay_indexer_unconfirmed_gone_total", "Deposits seen unconfirmed whose transaction was "
               "replaced or dropped (never credited)", ["chain", "verdict"])
FINALIZED = Gauge("beanpay_indexer_finalized_height", "The node's finalized block (chains that follow the tag)",
                  ["chain"])
HALTED = Gauge("beanpay_indexer_halted", "1 when the chain's follower stopped on what it must not guess about",
               ["chain"])

PREFETCH_BATCHES = 1  # batches queued for the writer; with the one being fetched and the one being written, 3 in memory


class LostLeadership(Exception):
    pass


# what ends a term of leadership but not the follower: it reconnects and asks for the lock again
LEADERSHIP_BREAKS: tuple[type[BaseException], ...] = (*RIDE_OUT, LostLeadership)


class ChainHalted(Exception):
    """The chain's follower stopped, and stays stopped until an operator rewinds the index."""


class NoProgress(ChainHalted):
    """The node keeps serving blocks that do not link to the index (it should not): the chain halts, as for
    a fork below the window, rather than rewind and retry every poll for ever."""


@dataclass(frozen=True)
class ChainPolicy:
    chain: str
    confirmations: int
    finality_depth: int
    poll_seconds: float
    batch_blocks: int
    start_height: int | None
    drop_after_seconds: float = 900.0  # a seen payment gone from the mempool this long, inputs unspent: dropped
    finality_tag: bool = False  # final is what the node's `finalized` block says (else: finality_depth below the tip)


class Follower:
    def __init__(self, policy: ChainPolicy, pool: Pool, source: Source) -> None:
        self.policy = policy
        self.pool = pool
        self.source = source
        self._watched: dict[Any, str] = {}
        self._watched_from = 0  # the next watched-address read starts at this transaction id (0: all)
        self._mempool_known: set[str] = set()
        self._absences = Absences()
        self._finalized: int | None = None  # the node's `finalized` block, where the chain follows it
        self._judged = 0  # mempool judgments made (the seen inputs no deposit waits on are forgotten every 60th)
        self._outpoints: set[Any] | None = None  # tracked outputs not yet spent (chains with outputs)
        self._tracked: set[str] = set()  # addresses of shops' own wallets: their outputs' spends are recorded
        self._transfer_inputs = -1  # outputs refunds and payouts set out to spend, when last read

    async def _ensure_started(self, node_tip: int) -> Cursor:
        async with self.pool.acquire() as conn:
            cur = await store.cursor(conn, self.policy.chain)
        if cur is not None:
            if cur.halted_at is not None:
                HALTED.labels(self.policy.chain).set(1)
                raise ChainHalted(f"{self.policy.chain}: halted at {cur.halted_at:%Y-%m-%d %H:%M:%S}Z: "
                                  f"{cur.halt_reason}; check the node, then rewind with `beanpay chain reorg`")
            HALTED.labels(self.policy.chain).set(0)
            return cur
        start = node_tip if self.policy.start_height is None else min(self.policy.start_height, node_tip)
        after = max(start - 1, 0)
        (_, block), = await self.source.blocks([after])  # ask the node before opening a transaction
        async with self.pool.transaction() as conn:
            await store.start_at(conn, self.policy.chain, after, block.hash, block.prev_hash)  # no-op if raced
            cur = await store.cursor(conn, self.policy.chain)
        log.info("index started", chain=self.policy.chain, after_height=cur.tip_height if cur else after)
        return cur or Cursor(after, block.hash)

    async def _refresh_watched(self) -> None:
        """Watched addresses written since the last read. Reads go by the id of the writing transaction,
        from the oldest one still running at the previous read, so an address committed late is never
        missed and an unchanged set costs one small query."""
        async with self.pool.acquire() as conn:
            self._watched_from, rows = await store.watched_since(conn, self.policy.chain, self._watched_from)
        found = {self.source.watch_key(address, script): address for address, script, _ in rows}
        if found.keys() - self._watched.keys():
            self._watched = {**self._watched, **found}  # a new map: sources may memoize by identity
        self._tracked.update(address for address, _, tracked in rows if tracked)

    async def sync(self, until: int | None = None) -> int:
        """Apply blocks up to the node's tip (or `until`); return how many were applied."""
        try:
            return await self._sync(until)
        except BaseException:
            self._outpoints = None  # what a failed batch took out of it was never written: read it again
            raise

    async def _sync(self, until: int | None) -> int:
        chain = self.policy.chain
        node_tip = await self.source.tip()
        target = node_tip if until is None else min(until, node_tip)
        NODE_TIP.labels(chain).set(node_tip)
        await self._read_finalized()
        # Read after the tip: a block up to the target was mined before now, so it can only pay an address
        # handed out before now. Addresses handed out later can only be paid in later blocks (next sync).
        await self._refresh_watched()
        cur = await self._ensure_started(node_tip)
        await self._load_outpoints()
        if node_tip < cur.tip_height or (await self.source.hashes([cur.tip_height]))[cur.tip_height] != cur.tip_hash:
            await self._handle_reorg()  # our tip left the node's chain (it may even have got shorter)
            async with self.pool.acquire() as conn:
                cur = await store.cursor(conn, chain) or cur
        applied, rewound_to = 0, None
        while cur.tip_height < target:
            cur, count = await self._catch_up(cur, target)
            applied += count
            if cur.tip_height < target:  # a block did not follow: the node's chain changed
                ancestor = await self._handle_reorg()
                if ancestor == rewound_to and count == 0:  # the same rewind again, nothing applied since
                    await self._halt(f"rewound to {ancestor} twice and the node's next block still does not link "
                                     "to it")
                rewound_to = ancestor
                async with self.pool.acquire() as conn:
                    cur = await store.cursor(conn, chain) or cur
        await self._scan_mempool(cur.tip_height)
        INDEXED_TIP.labels(chain).set(cur.tip_height)
        LAG.labels(chain).set(max(0, node_tip - cur.tip_height))
        async with self.pool.acquire() as conn:
            await store.set_node_tip(conn, chain, node_tip)
        return applied

    async def _load_outpoints(self) -> None:
        """The tracked outputs still unspent (shops' own wallets', and those refunds and payouts spend),
        read once, after each reorg and when a refund or payout sets out to spend more, and kept up to date
        from what the applied blocks pay and spend. Only these: every block is walked while any is
        tracked, and the platform's own outputs are reconciled against the node instead."""
        if self.source.outpoint("00" * 32, 0) is None:
            return
        async with self.pool.acquire() as conn:
            inputs = await store.spent_by_transfers(conn, self.policy.chain)
            if self._outpoints is not None and inputs == self._transfer_inputs:
                return
            self._transfer_inputs = inputs
            self._outpoints = {self.source.outpoint(t, i) for t, i in await store.unspent_outputs(conn,
                                                                                                   self.policy.chain)}

    def _changes(self, height: int, block: Any) -> BlockChanges:
        """What a block pays to watched addresses and spends of recorded outputs (its own outputs too)."""
        deposits = self.source.deposits(block, self._watched)
        spends = []
        if self._outpoints is not None:
            self._outpoints.update(self.source.outpoint(d.txid, d.output_index) for d in deposits
                                   if d.address in self._tracked)
            spends = self.source.spends(block, self._outpoints)
            self._outpoints.difference_update(self.source.outpoint(s.txid, s.output_index) for s in spends)
        return BlockChanges(height, block.hash, block.prev_hash, deposits, spends)

    async def _scan_mempool(self, indexed_tip: int) -> None:
        """Where the chain has a mempool we can read (Bitcoin), record unconfirmed payments as `seen`, and
        judge those whose transaction left it without being mined (replaced or dropped)."""
        source = self.source
        if not isinstance(source, MempoolSource):
            return
        await self._refresh_watched()
        if len(self._mempool_known) > 200_000:  # forget old txids now and then; re-checking is harmless
            self._mempool_known.clear()
        found = await source.mempool_deposits(self._watched, self._mempool_known)
        if found.deposits:
            async with self.pool.transaction() as conn:
                await store.record_seen(conn, self.policy.chain, found.deposits, found.inputs)
        await self._judge_unconfirmed(source, found, indexed_tip)

    async def _judge_unconfirmed(self, source: MempoolSource, scan: MempoolScan, indexed_tip: int) -> None:
        """Seen payments whose transaction is missing from the mempool: replaced at once when a conflicting
        transaction is there; after two scans without it, asked about its inputs (replaced if one was spent in a
        block, dropped if none was and it has been gone `drop_after_seconds`), but only while the node's tip is
        the index's, before and after asking, so a block not yet applied is never taken for a drop."""
        chain = self.policy.chain
        async with self.pool.acquire() as conn:
            waiting = await store.unconfirmed_seen(conn, chain)
        missing = self._absences.update([t for t in waiting if t not in scan.mempool], time.monotonic())
        verdicts = {t: Verdict("replaced", by) for t in missing
                    if (by := conflict(t, waiting[t], source.spenders, scan.mempool)) is not None}
        asked = sorted(t for t, (_, scans) in missing.items() if t not in verdicts and scans >= ABSENT_SCANS)
        if asked and await source.tip() == indexed_tip:
            spent = [(t, i) for t in asked for i in waiting[t]]
            unspent = dict(zip(spent, await source.unspent([i for _, i in spent]), strict=True))
            if await source.tip() == indexed_tip:
                for t in asked:
                    verdict = judge(t, waiting[t], [unspent[(t, i)] for i in waiting[t]], source.spenders,
                                    scan.mempool)
                    if verdict.status == "replaced" or missing[t][0] >= self.policy.drop_after_seconds:
                        verdicts[t] = verdict
        self._judged += 1
        if not verdicts and self._judged % 60:
            return
        async with self.pool.transaction() as conn:
            for txid, verdict in sorted(verdicts.items()):
                gone = await store.mark_gone(conn, chain, txid, verdict.status, verdict.replaced_by)
                if gone:
                    GONE.labels(chain, verdict.status).inc(gone)
                    log.warning("a payment seen unconfirmed will not be credited", chain=chain, txid=txid,
                                verdict=verdict.status, replaced_by=verdict.replaced_by, deposits=gone)
            await store.forget_settled_inputs(conn, chain)  # now and then, or when something was judged
        self._mempool_known.difference_update(verdicts)  # broadcast again, it is seen again

    async def _catch_up(self, cur: Cursor, target: int) -> tuple[Cursor, int]:
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
                linked: list[BlockChanges] = []
                for height, block in fetched:
                    if block.prev_hash != (linked[-1].hash if linked else cur.tip_hash):
                        break
                    linked.append(self._changes(height, block))
                    await asyncio.sleep(0)  # let the fetcher send its next request now, not after the batch
                if linked:
                    await self._apply(linked)
                    cur = Cursor(linked[-1].height, linked[-1].hash)
                    applied += len(linked)
                if len(linked) < len(fetched):
                    break
        finally:
            fetcher.cancel()
        return cur, applied

    async def _apply(self, changes: list[BlockChanges]) -> None:
        async with self.pool.transaction() as conn:
            await store.apply_blocks(conn, self.policy.chain, changes, required_confirmations=self.policy.confirmations,
                                     keep_from=self._final_below(changes[-1].height))
        BLOCKS.labels(self.policy.chain).inc(len(changes))
        DEPOSITS.labels(self.policy.chain).inc(sum(len(c.deposits) for c in changes))

    def _final_below(self, tip: int) -> int:
        """The first height a reorg may still reach: after the node's `finalized` block where the chain follows
        it and the node told it, else `finality_depth` below `tip`."""
        return self._finalized + 1 if self._finalized is not None else tip - self.policy.finality_depth

    async def _read_finalized(self) -> None:
        if not self.policy.finality_tag:
            return
        finalized = await self.source.finalized()
        if finalized is None and self._finalized is not None:
            log.warning("the node no longer tells its finalized block; finality by depth", chain=self.policy.chain)
        self._finalized = finalized
        if finalized is not None:
            FINALIZED.labels(self.policy.chain).set(finalized)

    async def _halt(self, reason: str, kind: type[ChainHalted] = NoProgress) -> NoReturn:
        """Stop following the chain: recorded (alert-able, refused on restart until an operator rewinds)."""
        chain = self.policy.chain
        async with self.pool.transaction() as conn:
            await store.halt(conn, chain, reason)
        HALTED.labels(chain).set(1)
        LEADING.labels(chain).set(0)
        log.error("the follower stops", chain=chain, reason=reason)
        raise kind(f"{chain}: {reason}")

    async def _handle_reorg(self) -> int:
        """Rewind to where the node's chain and the kept window agree; returns that height. A fork below
        the window halts the chain (recorded, alert-able, refused on restart) instead of guessing."""
        chain = self.policy.chain
        async with self.pool.acquire() as conn:
            stored = await store.window(conn, chain)
        node_tip = await self.source.tip()
        heights = [h for h in sorted(stored) if h <= node_tip]
        node = await self.source.hashes(heights) if heights else {}
        try:
            ancestor = fork_point(stored, node)
        except UnrecoverableReorg as exc:
            await self._halt(str(exc), ChainHalted)
        async with self.pool.transaction() as conn:
            orphaned = await store.rewind(conn, chain, ancestor, reason="reorg detected")
        self._outpoints = None  # spends above the fork are orphaned: read the unspent outputs again
        REORGS.labels(chain).inc()
        log.warning("reorg", chain=chain, common_ancestor=ancestor, depth=max(stored) - ancestor,
                    orphaned_deposits=len(orphaned))
        return ancestor

    async def run(self, dsn: str, stop: asyncio.Event) -> None:
        """Lead the chain until `stop`. Losing the database (a restart, a failover) drops the lead and
        reconnects with backoff; a halted chain ends the run with ChainHalted (the process exits non-zero)."""
        chain = self.policy.chain
        backoff = Backoff()
        while not stop.is_set():
            try:
                async with leadership(dsn, "beanpay.indexer", chain, stop) as lock_conn:
                    if lock_conn is not None:
                        backoff.reset()
                        await self._lead(lock_conn, stop)
            except ChainHalted:
                raise
            except LEADERSHIP_BREAKS as exc:
                LEADING.labels(chain).set(0)
                log.warning("lost the database; reconnecting", chain=chain, error=repr(exc),
                            retry_in=round(backoff.delay, 1))
                await backoff.wait(stop)
        LEADING.labels(chain).set(0)

    async def _lead(self, lock_conn: asyncpg.Connection, stop: asyncio.Event) -> None:
        chain = self.policy.chain
        while not stop.is_set():
            started = time.monotonic()
            try:
                await self.sync()
                LEADING.labels(chain).set(1)
            except ChainHalted:
                raise
            except Exception as exc:  # the node or the database hiccuped: log, back off, go on
                LEADING.labels(chain).set(0)
                log.warning("sync failed; retrying", chain=chain, error=repr(exc))
            try:
                await lock_conn.execute("SELECT 1")
            except RIDE_OUT as exc:
                raise LostLeadership(f"{chain}: lock connection lost") from exc
            await sleep(stop, max(0.0, self.policy.poll_seconds - (time.monotonic() - started)))
