"""The chain index in Postgres. Each block is applied, and each rewind done, in one transaction
together with the checkpoint and the outbox events, so a crash at any point loses nothing and
counts nothing twice: on restart the index resumes from the last committed block."""

from __future__ import annotations

import itertools

from beanpay import audit, queries
from beanpay.db import Connection, fetch_as, fetchrow_as
from beanpay.events import catalog
from beanpay.events.outbox import Event, emit_many
from beanpay.events.payloads import DepositPayload
from beanpay.indexer.types import BlockChanges, Cursor, FoundDeposit, FoundSpend

SQL = queries.load("beanpay.indexer", "index.sql")


class TipMoved(Exception):
    """The stored tip is not the parent of the block being applied (another writer, or a reorg)."""


async def cursor(conn: Connection, chain: str, *, lock: bool = False) -> Cursor | None:
    return await fetchrow_as(conn, SQL.lock_cursor if lock else SQL.cursor, Cursor, chain)


async def start_at(conn: Connection, chain: str, height: int, block_hash: str, parent_hash: str) -> None:
    """Begin indexing after the block (height, hash): it is taken as applied, with nothing in it."""
    await conn.execute(SQL.start_at, chain, height, block_hash, parent_hash)


async def window(conn: Connection, chain: str) -> dict[int, str]:
    return {r["height"]: r["hash"] for r in await conn.fetch(SQL.window, chain)}


def _deposit_events(kind: catalog.EventType[DepositPayload], rows: list[DepositPayload]) -> list[Event[DepositPayload]]:
    return [Event(kind, r.address, r) for r in rows]


async def apply_blocks(conn: Connection, chain: str, blocks: list[BlockChanges], *, required_confirmations: int,
                       keep_from: int) -> None:
    """Apply consecutive blocks: headers, deposits, spends, confirmations, checkpoint, events. Call inside a
    transaction. Headers below `keep_from` (final: no reorg can reach them) are pruned.

    Following the tip this is one block; catching up it is a fetched batch, applied all or nothing,
    so the checkpoint and what the blocks changed always commit together.
    """
    first, last = blocks[0], blocks[-1]
    for prev, block in itertools.pairwise(blocks):
        if block.parent_hash != prev.hash or block.height != prev.height + 1:
            raise TipMoved(f"{chain}: block {block.height} does not follow block {prev.height}")
    # moving the checkpoint first both locks it and checks that the first block extends it
    if not await conn.fetchval(SQL.advance_cursor, chain, last.height, last.hash, first.height - 1,
                               first.parent_hash):
        raise TipMoved(f"{chain}: block {first.height} does not extend the stored tip (or the chain is halted)")
    await conn.execute(SQL.add_headers, chain, [b.height for b in blocks], [b.hash for b in blocks],
                       [b.parent_hash for b in blocks], min(keep_from, last.height))
    events: list[Event[DepositPayload]] = []
    found = [(b, d) for b in blocks for d in b.deposits]
    if found:
        events += _deposit_events(catalog.DEPOSIT_DETECTED, await fetch_as(
            conn, SQL.add_deposits, DepositPayload, chain, [d.asset for _, d in found], [d.txid for _, d in found],
            [d.output_index for _, d in found], [d.address for _, d in found], [d.amount for _, d in found],
            [b.hash for b, _ in found], [b.height for b, _ in found], last.height))
    spent = [(b, s) for b in blocks for s in b.spends]
    if spent:
        await conn.execute(SQL.add_spends, chain, [s.txid for _, s in spent], [s.output_index for _, s in spent],
                           [s.spending_txid for _, s in spent], [b.hash for b, _ in spent],
                           [b.height for b, _ in spent])
    events += _deposit_events(catalog.DEPOSIT_CONFIRMED, await fetch_as(
        conn, SQL.confirm_deposits, DepositPayload, chain, last.height, required_confirmations))
    await emit_many(conn, events)


async def rewind(conn: Connection, chain: str, to_height: int, *, reason: str, actor: audit.Actor = audit.SYSTEM,
                 node_header: tuple[str, str] | None = None) -> list[DepositPayload]:
    """Drop every block above `to_height`: their deposits become orphaned. Call inside a transaction.

    Below the kept window there is no stored header to rewind to; an operator may then give the
    node's (hash, parent hash) at that height, which becomes the new base of the window."""
    tip = await cursor(conn, chain, lock=True)
    if tip is None:
        raise TipMoved(f"{chain}: nothing indexed")
    ancestor = await conn.fetchval(SQL.kept_hash, chain, to_height)
    if ancestor is None and node_header is None:
        raise TipMoved(f"{chain}: height {to_height} is outside the kept window; cannot rewind there")
    base_hash, parent = (ancestor, None) if ancestor is not None else node_header  # type: ignore[misc]
    orphaned = await fetch_as(conn, SQL.orphan_above, DepositPayload, chain, to_height)
    await conn.execute(SQL.orphan_spends_above, chain, to_height)
    await emit_many(conn, _deposit_events(catalog.DEPOSIT_ORPHANED, orphaned))
    await conn.execute(SQL.rewind_to, chain, to_height, base_hash, tip.tip_height - to_height, parent)
    await audit.record(conn, actor, "chain.rewind", "chain", chain, before={"tip_height": tip.tip_height},
                       after={"tip_height": to_height, "reason": reason})
    return orphaned


async def halt(conn: Connection, chain: str, reason: str) -> None:
    await conn.execute(SQL.halt, chain, reason[:1000])


async def set_node_tip(conn: Connection, chain: str, height: int) -> None:
    await conn.execute(SQL.set_node_tip, chain, height)


async def watched_since(conn: Connection, chain: str, since_xid: int) \
        -> tuple[int, list[tuple[str, bytes | None, bool]]]:
    """Watched addresses written since the transaction `since_xid` (0: all), and where the next read starts;
    each with whether its outputs' spends are tracked (a shop's own wallet)."""
    rows = await conn.fetch(SQL.watched_since, chain, since_xid)
    found = [(r["address"], None if r["script"] is None else bytes(r["script"]), bool(r["tracked"])) for r in rows
             if r["address"] is not None]
    return int(rows[0]["next_from"]), found


async def spent_by_transfers(conn: Connection, chain: str) -> int:
    return int(await conn.fetchval(SQL.spent_by_transfers, chain))


async def backfill(conn: Connection, chain: str, height: int, block_hash: str, deposits: list[FoundDeposit], *,
                   tip_height: int, required_confirmations: int) -> int:
    """Add deposits of an already indexed block that are not yet known (e.g. a late-watched address).
    Known deposits are left alone, so replaying a range twice changes nothing. Returns how many were added."""
    if not deposits:
        return 0
    conf = tip_height - height + 1
    status = "confirmed" if conf >= required_confirmations else "confirming"
    rows = await fetch_as(conn, SQL.backfill, DepositPayload, chain, block_hash, height, [d.asset for d in deposits],
                          [d.txid for d in deposits], [d.output_index for d in deposits],
                          [d.address for d in deposits], [d.amount for d in deposits], conf, status)
    events: list[Event[DepositPayload]] = []
    for r in rows:  # each deposit's events together, in order
        events.append(Event(catalog.DEPOSIT_DETECTED, r.address, r))
        if r.status == "confirmed":
            events.append(Event(catalog.DEPOSIT_CONFIRMED, r.address, r))
    await emit_many(conn, events)
    return len(rows)


async def unspent_outputs(conn: Connection, chain: str, *, spent_too: bool = False) -> list[tuple[str, int]]:
    """Tracked outputs no mined input spends yet (`spent_too`: every tracked output)."""
    rows = await conn.fetch(SQL.recorded_outputs if spent_too else SQL.unspent_outputs, chain)
    return [(r["txid"], r["output_index"]) for r in rows]


async def backfill_spends(conn: Connection, chain: str, height: int, block_hash: str, spends: list[FoundSpend], *,
                          tip_height: int, required_confirmations: int) -> None:
    """Spends of an already indexed block not yet known (a replay); known ones are left alone."""
    if spends:
        status = "confirmed" if tip_height - height + 1 >= required_confirmations else "confirming"
        await conn.execute(SQL.backfill_spends, chain, block_hash, height, [s.txid for s in spends],
                           [s.output_index for s in spends], [s.spending_txid for s in spends], status)


async def record_seen(conn: Connection, chain: str, deposits: list[FoundDeposit],
                      inputs: dict[str, tuple[tuple[str, int], ...]]) -> int:
    """Payments seen unconfirmed (mempool): new deposits in status `seen` (a dropped or replaced one seen again
    too), with the outputs their transactions spend."""
    if not deposits:
        return 0
    rows = await fetch_as(conn, SQL.record_seen, DepositPayload, chain, [d.asset for d in deposits],
                          [d.txid for d in deposits], [d.output_index for d in deposits],
                          [d.address for d in deposits], [d.amount for d in deposits])
    spends = [(txid, prev, vout) for txid, spent in inputs.items() for prev, vout in spent]
    await conn.execute(SQL.record_seen_inputs, chain, [s[0] for s in spends], [s[1] for s in spends],
                       [s[2] for s in spends])
    await emit_many(conn, _deposit_events(catalog.DEPOSIT_DETECTED, rows))
    return len(rows)


async def unconfirmed_seen(conn: Connection, chain: str) -> dict[str, list[tuple[str, int]]]:
    """Transactions whose deposits are still `seen`, each with the outputs it spends."""
    return {r["txid"]: list(zip(r["prev_txids"], r["prev_vouts"], strict=True))
            for r in await conn.fetch(SQL.unconfirmed_seen, chain)}


async def mark_gone(conn: Connection, chain: str, txid: str, status: str, replaced_by: str | None) -> int:
    """A seen transaction's deposits are replaced or dropped: never credited (the engine's queue trigger fires)."""
    rows = await fetch_as(conn, SQL.mark_gone, DepositPayload, chain, txid, status, replaced_by)
    kind = catalog.DEPOSIT_REPLACED if status == "replaced" else catalog.DEPOSIT_DROPPED
    await emit_many(conn, _deposit_events(kind, rows))
    return len(rows)


async def forget_settled_inputs(conn: Connection, chain: str) -> None:
    await conn.execute(SQL.forget_settled_inputs, chain)
