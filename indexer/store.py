"""The chain index in Postgres. Each block is applied, and each rewind done, in one transaction
together with the checkpoint and the outbox events, so a crash at any point loses nothing and
counts nothing twice: on restart the index resumes from the last committed block."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass

import asyncpg

from beanpay import audit
from beanpay.db import Connection
from beanpay.events.outbox import Event, emit, emit_many
from beanpay.indexer.events import DepositEvent
from beanpay.money import base_units


class TipMoved(Exception):
    """The stored tip is not the parent of the block being applied (another writer, or a reorg)."""


@dataclass(frozen=True, slots=True)
class FoundDeposit:
    asset: str
    txid: str
    output_index: int
    address: str
    amount: int  # base units


@dataclass(frozen=True, slots=True)
class Cursor:
    tip_height: int
    tip_hash: str


DEPOSIT_COLUMNS = ("id, chain, asset, txid, output_index, address, amount, status, confirmations, block_hash, "
                   "block_height")


def _event(row: asyncpg.Record) -> DepositEvent:
    return DepositEvent(
        deposit_id=row["id"], chain=row["chain"], asset=row["asset"], txid=row["txid"],
        output_index=row["output_index"], address=row["address"], amount=base_units(row["amount"]),
        status=row["status"],
        confirmations=row["confirmations"], block_hash=row["block_hash"], block_height=row["block_height"])


async def cursor(conn: Connection, chain: str, *, lock: bool = False) -> Cursor | None:
    row = await conn.fetchrow("SELECT tip_height, tip_hash FROM chain_cursors WHERE chain = $1"
                              + (" FOR UPDATE" if lock else ""), chain)
    return None if row is None else Cursor(row["tip_height"], row["tip_hash"])


async def start_at(conn: Connection, chain: str, height: int, block_hash: str, parent_hash: str) -> None:
    """Begin indexing after the block (height, hash): it is taken as applied, with nothing in it."""
    await conn.execute(
        """INSERT INTO chain_blocks (chain, height, hash, parent_hash) VALUES ($1, $2, $3, $4)
           ON CONFLICT DO NOTHING""", chain, height, block_hash, parent_hash)
    await conn.execute(
        """INSERT INTO chain_cursors (chain, tip_height, tip_hash) VALUES ($1, $2, $3)
           ON CONFLICT (chain) DO NOTHING""", chain, height, block_hash)


async def window(conn: Connection, chain: str) -> dict[int, str]:
    rows = await conn.fetch("SELECT height, hash FROM chain_blocks WHERE chain = $1", chain)
    return {r["height"]: r["hash"] for r in rows}


@dataclass(frozen=True, slots=True)
class BlockChanges:
    height: int
    hash: str
    parent_hash: str
    deposits: list[FoundDeposit]


async def apply_blocks(conn: Connection, chain: str, blocks: list[BlockChanges], *, required_confirmations: int,
                       finality_depth: int) -> None:
    """Apply consecutive blocks: headers, deposits, confirmations, checkpoint, events. Call inside a transaction.

    Following the tip this is one block; catching up it is a fetched batch, applied all or nothing,
    so the checkpoint and what the blocks changed always commit together.
    """
    first, last = blocks[0], blocks[-1]
    for prev, block in itertools.pairwise(blocks):
        if block.parent_hash != prev.hash or block.height != prev.height + 1:
            raise TipMoved(f"{chain}: block {block.height} does not follow block {prev.height}")
    # moving the checkpoint first both locks it and checks that the first block extends it
    moved = await conn.fetchval(
        """UPDATE chain_cursors SET tip_height = $2, tip_hash = $3, updated_at = now()
           WHERE chain = $1 AND tip_height = $4 AND tip_hash = $5 RETURNING true""",
        chain, last.height, last.hash, first.height - 1, first.parent_hash)
    if not moved:
        raise TipMoved(f"{chain}: block {first.height} does not extend the stored tip")
    await conn.execute(
        """WITH pruned AS (DELETE FROM chain_blocks WHERE chain = $1 AND height < $5)
           INSERT INTO chain_blocks (chain, height, hash, parent_hash)
           SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::text[])""",
        chain, [b.height for b in blocks], [b.hash for b in blocks], [b.parent_hash for b in blocks],
        last.height - finality_depth)
    events: list[Event] = []
    found = [(b, d) for b in blocks for d in b.deposits]
    if found:
        # a new output, or one mined again after a reorg orphaned it, becomes `confirming` here
        rows = await conn.fetch(
            f"""INSERT INTO deposits (chain, asset, txid, output_index, address, amount, block_hash, block_height,
                                      confirmations, status)
                SELECT $1, d.asset, d.txid, d.output_index, d.address, d.amount, d.block_hash, d.block_height,
                       1, 'confirming'
                FROM unnest($2::text[], $3::text[], $4::int[], $5::text[], $6::numeric[], $7::text[], $8::bigint[])
                     AS d(asset, txid, output_index, address, amount, block_hash, block_height)
                ON CONFLICT (chain, asset, txid, output_index) DO UPDATE
                    SET status = 'confirming', block_hash = EXCLUDED.block_hash,
                        block_height = EXCLUDED.block_height, confirmations = 1, orphaned_at = NULL,
                        updated_at = now()
                    WHERE deposits.status IN ('seen', 'orphaned')
                RETURNING {DEPOSIT_COLUMNS}""",
            chain, [d.asset for _, d in found], [d.txid for _, d in found], [d.output_index for _, d in found],
            [d.address for _, d in found], [d.amount for _, d in found], [b.hash for b, _ in found],
            [b.height for b, _ in found])
        events += [Event("deposit.detected", "deposit", row["address"], _event(row)) for row in rows]
    confirmed = await conn.fetch(
        f"""UPDATE deposits SET confirmations = $2 - block_height + 1,
                   status = CASE WHEN $2 - block_height + 1 >= $3 THEN 'confirmed' ELSE 'confirming' END,
                   confirmed_at = CASE WHEN $2 - block_height + 1 >= $3 THEN now() END,
                   updated_at = now()
            WHERE chain = $1 AND status = 'confirming'
            RETURNING {DEPOSIT_COLUMNS}""", chain, last.height, required_confirmations)
    events += [Event("deposit.confirmed", "deposit", row["address"], _event(row))
               for row in confirmed if row["status"] == "confirmed"]
    await emit_many(conn, events)


async def rewind(conn: Connection, chain: str, to_height: int, *, reason: str,
                 actor: audit.Actor = audit.SYSTEM) -> list[DepositEvent]:
    """Drop every block above `to_height`: their deposits become orphaned. Call inside a transaction."""
    tip = await cursor(conn, chain, lock=True)
    if tip is None:
        raise TipMoved(f"{chain}: nothing indexed")
    ancestor = await conn.fetchval("SELECT hash FROM chain_blocks WHERE chain = $1 AND height = $2", chain, to_height)
    if ancestor is None:
        raise TipMoved(f"{chain}: height {to_height} is outside the kept window; cannot rewind there")
    rows = await conn.fetch(
        f"""UPDATE deposits SET status = 'orphaned', block_hash = NULL, block_height = NULL, confirmations = 0,
                   confirmed_at = NULL, orphaned_at = now(), updated_at = now()
            WHERE chain = $1 AND block_height > $2 AND status IN ('confirming', 'confirmed')
            RETURNING {DEPOSIT_COLUMNS}""", chain, to_height)
    events = [_event(r) for r in rows]
    for row, event in zip(rows, events, strict=True):
        await emit(conn, "deposit.orphaned", "deposit", row["address"], event)
    await conn.execute("DELETE FROM chain_blocks WHERE chain = $1 AND height > $2", chain, to_height)
    await conn.execute(
        """UPDATE chain_cursors SET tip_height = $2, tip_hash = $3, last_reorg_at = now(), last_reorg_depth = $4,
                  updated_at = now()
           WHERE chain = $1""", chain, to_height, ancestor, tip.tip_height - to_height)
    await audit.record(conn, actor, "chain.rewind", "chain", chain, before={"tip_height": tip.tip_height},
                       after={"tip_height": to_height, "reason": reason})
    return events


async def watched(conn: Connection, chain: str,
                  since: dt.datetime | None = None) -> list[tuple[str, bytes | None, dt.datetime]]:
    """(address, script, created_at) of the chain's watched addresses, all or those created since `since`."""
    rows = await conn.fetch(
        "SELECT address, script, created_at FROM watched_addresses WHERE chain = $1 AND created_at >= $2",
        chain, since or dt.datetime.min.replace(tzinfo=dt.UTC))
    return [(r["address"], None if r["script"] is None else bytes(r["script"]), r["created_at"]) for r in rows]


async def allocate_index(conn: Connection, chain: str) -> int:
    """The next derivation index for `chain`: row-locked, so concurrent callers get distinct indexes
    and a rolled-back caller gives its index back (no gaps, no reuse)."""
    index = await conn.fetchval(
        """INSERT INTO address_counters (chain, next_index) VALUES ($1, 1)
           ON CONFLICT (chain) DO UPDATE SET next_index = address_counters.next_index + 1
           RETURNING next_index - 1""", chain)
    return int(index)


async def watch(conn: Connection, chain: str, address: str, script: bytes | None, index: int | None,
                order_id: object = None) -> None:
    await conn.execute(
        """INSERT INTO watched_addresses (chain, address, script, derivation_index, order_id)
           VALUES ($1, $2, $3, $4, $5)""", chain, address, script, index, order_id)


async def backfill(conn: Connection, chain: str, height: int, block_hash: str, deposits: list[FoundDeposit], *,
                   tip_height: int, required_confirmations: int) -> int:
    """Add deposits of an already indexed block that are not yet known (e.g. a late-watched address).
    Known deposits are left alone, so replaying a range twice changes nothing. Returns how many were added."""
    if not deposits:
        return 0
    conf = tip_height - height + 1
    status = "confirmed" if conf >= required_confirmations else "confirming"
    rows = await conn.fetch(
        f"""INSERT INTO deposits (chain, asset, txid, output_index, address, amount, block_hash, block_height,
                                  confirmations, status, confirmed_at)
            SELECT $1, d.asset, d.txid, d.output_index, d.address, d.amount, $2, $3, $9, $10::text,
                   CASE WHEN $10::text = 'confirmed' THEN now() END
            FROM unnest($4::text[], $5::text[], $6::int[], $7::text[], $8::numeric[])
                 AS d(asset, txid, output_index, address, amount)
            ON CONFLICT (chain, asset, txid, output_index) DO NOTHING
            RETURNING {DEPOSIT_COLUMNS}""",
        chain, block_hash, height, [d.asset for d in deposits], [d.txid for d in deposits],
        [d.output_index for d in deposits], [d.address for d in deposits], [d.amount for d in deposits],
        conf, status)
    for row in rows:
        await emit(conn, "deposit.detected", "deposit", row["address"], _event(row))
        if row["status"] == "confirmed":
            await emit(conn, "deposit.confirmed", "deposit", row["address"], _event(row))
    return len(rows)


async def record_seen(conn: Connection, chain: str, deposits: list[FoundDeposit]) -> int:
    """Payments seen unconfirmed (mempool): new deposits in status `seen`; known ones are left alone."""
    if not deposits:
        return 0
    rows = await conn.fetch(
        f"""INSERT INTO deposits (chain, asset, txid, output_index, address, amount, status)
            SELECT $1, d.asset, d.txid, d.output_index, d.address, d.amount, 'seen'
            FROM unnest($2::text[], $3::text[], $4::int[], $5::text[], $6::numeric[])
                 AS d(asset, txid, output_index, address, amount)
            ON CONFLICT (chain, asset, txid, output_index) DO NOTHING
            RETURNING {DEPOSIT_COLUMNS}""",
        chain, [d.asset for d in deposits], [d.txid for d in deposits], [d.output_index for d in deposits],
        [d.address for d in deposits], [d.amount for d in deposits])
    await emit_many(conn, [Event("deposit.detected", "deposit", r["address"], _event(r)) for r in rows])
    return len(rows)
