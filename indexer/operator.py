"""The operator's view of the index: status, rewind (reorg) and replay of block ranges."""

from __future__ import annotations

import datetime as dt
import uuid

import msgspec
from tqdm import tqdm

from beanpay import audit, queries
from beanpay.config import Settings
from beanpay.db import Pool, fetch_as
from beanpay.indexer import registry, store
from beanpay.indexer.follower import Follower

SQL = queries.load("beanpay.indexer", "operator.sql")


class EndpointStatus(msgspec.Struct):
    name: str  # never the URL: providers put their API key in it
    condition: str  # ok, lagging, failing, refused
    head: int | None
    lag: int
    error: str | None = None


class ChainStatus(msgspec.Struct):
    chain: str
    node_tip: int | None
    indexed_tip: int | None
    lag: int | None
    finalized_height: int | None
    confirmations_required: int
    watched_addresses: int
    deposits: dict[str, int]
    last_reorg_at: dt.datetime | None
    last_reorg_depth: int | None
    halted_at: dt.datetime | None = None
    halt_reason: str | None = None
    node_error: str | None = None
    endpoints: list[EndpointStatus] = []
    finality: str = "depth"  # tag: the finalized height is the node's `finalized` block


class AffectedDeposit(msgspec.Struct):
    deposit_id: uuid.UUID
    txid: str
    output_index: int
    address: str
    amount: str
    status: str
    block_height: int
    order_id: uuid.UUID | None


class ReorgPlan(msgspec.Struct):
    chain: str
    from_tip: int
    to_height: int
    deposits: list[AffectedDeposit]
    applied: bool


class ReplaySummary(msgspec.Struct):
    chain: str
    from_height: int
    to_height: int
    blocks_scanned: int
    blocks_applied: int
    deposits_added: int


class OperatorError(Exception):
    pass


async def status(settings: Settings, pool: Pool, chain: str) -> ChainStatus:
    pol = registry.policy(settings, chain)
    node_tip, node_error = None, None
    src = registry.source(settings, chain)
    endpoints: list[EndpointStatus] = []
    finalized: int | None = None
    try:
        node_tip = await src.tip()
        finalized = await src.finalized()
    except Exception as exc:  # report, do not fail: status is what operators run when things are wrong
        node_error = repr(exc)
    finally:
        if (health := getattr(src, "endpoint_health", None)) is not None:
            endpoints = [EndpointStatus(s.name, condition, s.head, s.lag, s.refused) for s, condition in health()]
        await src.close()
    async with pool.acquire() as conn:
        cur = await conn.fetchrow(SQL.status, chain)
        counts = {r["status"]: r["n"] for r in await conn.fetch(SQL.deposit_counts, chain)}
    assert cur is not None  # one row always, NULLs when the chain was never indexed
    tip = cur["tip_height"]
    return ChainStatus(
        chain=chain, node_tip=node_tip, indexed_tip=tip,
        lag=None if node_tip is None or tip is None else max(0, node_tip - tip),
        finalized_height=finalized if finalized is not None else None if tip is None
        else max(0, tip - pol.finality_depth), finality="tag" if finalized is not None else "depth",
        confirmations_required=pol.confirmations, watched_addresses=cur["watched"], deposits=counts,
        last_reorg_at=cur["last_reorg_at"], last_reorg_depth=cur["last_reorg_depth"], halted_at=cur["halted_at"],
        halt_reason=cur["halt_reason"], node_error=node_error, endpoints=endpoints)


async def reorg(settings: Settings, pool: Pool, chain: str, to_height: int, *, dry_run: bool,
                beyond_window: bool = False) -> ReorgPlan:
    """Rewind the index to `to_height` (deposits above it orphaned); clears a halted follower. Below
    the kept window only with `beyond_window`: the node's block at that height becomes the new base."""
    registry.policy(settings, chain)
    node_header = None
    if beyond_window:
        src = registry.source(settings, chain)
        try:
            (_, block), = await src.blocks([to_height])  # asked before the transaction: a node call holds no lock
            node_header = (block.hash, block.prev_hash)
        finally:
            await src.close()
    async with pool.transaction() as conn:
        cur = await store.cursor(conn, chain, lock=True)
        if cur is None:
            raise OperatorError(f"{chain}: nothing indexed yet")
        if to_height >= cur.tip_height and cur.halted_at is None:
            raise OperatorError(f"{chain}: the index is at {cur.tip_height}; --to-height must be below it")
        if to_height > cur.tip_height:
            raise OperatorError(f"{chain}: the index is at {cur.tip_height}; --to-height must not be above it")
        lowest = await conn.fetchval(store.SQL.lowest_kept, chain)
        if to_height < lowest and not beyond_window:
            raise OperatorError(f"{chain}: height {to_height} is below the kept window (lowest {lowest}); "
                                "check the node, then rewind with --beyond-window to trust its chain from there")
        affected = await fetch_as(conn, SQL.affected_by_rewind, AffectedDeposit, chain, to_height)
        if not dry_run:
            await store.rewind(conn, chain, to_height, reason="operator rewind",
                               actor=audit.Actor(id=None, role="operator"),
                               node_header=node_header if to_height < lowest else None)
    return ReorgPlan(chain, cur.tip_height, to_height, affected, applied=not dry_run)


async def replay(settings: Settings, pool: Pool, chain: str, start: int, end: int | None, *,
                 progress: bool = True) -> ReplaySummary:
    """Re-scan [start, end]: indexed blocks are checked and their missing deposits added; blocks
    above the indexed tip are applied as the follower would. Replaying twice changes nothing."""
    pol = registry.policy(settings, chain)
    src = registry.source(settings, chain)
    try:
        node_tip = await src.tip()
        end = node_tip if end is None else end
        if start > end or end > node_tip:
            raise OperatorError(f"{chain}: bad range {start}..{end} (node tip {node_tip})")
        async with pool.acquire() as conn:
            cur = await store.cursor(conn, chain)
            stored = await store.window(conn, chain)
            rows = await conn.fetch(SQL.all_watched, chain)
            watched = {src.watch_key(r["address"], None if r["script"] is None else bytes(r["script"])): r["address"]
                       for r in rows}
            tracked = {r["address"] for r in rows if r["tracked"]}
        if cur is None:
            raise OperatorError(f"{chain}: nothing indexed yet; start the follower first")
        scanned = added = 0
        async with pool.acquire() as conn:
            outpoints = {src.outpoint(t, i) for t, i in await store.unspent_outputs(conn, chain, spent_too=True)}
        outpoints.discard(None)
        bar = tqdm(total=end - start + 1, unit="block", disable=not progress, desc=f"replay {chain}")
        for lo in range(start, min(end, cur.tip_height) + 1, pol.batch_blocks):
            heights = list(range(lo, min(lo + pol.batch_blocks - 1, end, cur.tip_height) + 1))
            for height, block in await src.blocks(heights):
                if height in stored and stored[height] != block.hash:
                    raise OperatorError(f"{chain}: block {height} differs from the index ({stored[height]} vs "
                                        f"{block.hash}); the follower will handle this reorg, or rewind first")
                found = src.deposits(block, watched)
                outpoints.update(src.outpoint(d.txid, d.output_index) for d in found if d.address in tracked)
                async with pool.transaction() as conn:
                    added += await store.backfill(conn, chain, height, block.hash, found,
                                                  tip_height=cur.tip_height,
                                                  required_confirmations=pol.confirmations)
                    await store.backfill_spends(conn, chain, height, block.hash, src.spends(block, outpoints),
                                                tip_height=cur.tip_height, required_confirmations=pol.confirmations)
                scanned += 1
                bar.update(1)
        applied = 0
        if end > cur.tip_height:
            applied = await Follower(pol, pool, src).sync(until=end)
            bar.update(applied)
        bar.close()
        return ReplaySummary(chain, start, end, scanned + applied, applied, added)
    finally:
        await src.close()
