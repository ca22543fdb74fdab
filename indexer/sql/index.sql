-- name: cursor
-- Where a chain's index stands (its tip), and whether its follower halted and why.
SELECT tip_height, tip_hash, halted_at, halt_reason FROM chain_cursors WHERE chain = $1;

-- name: lock_cursor
-- The chain's checkpoint, locked (FOR UPDATE) for a rewind.
SELECT tip_height, tip_hash, halted_at, halt_reason FROM chain_cursors WHERE chain = $1 FOR UPDATE;

-- name: start_at
-- Begins indexing after a block (height, hash): taken as applied, with nothing in it. A no-op when
-- another follower started the chain first.
WITH header AS (
    INSERT INTO chain_blocks (chain, height, hash, parent_hash) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING
)
INSERT INTO chain_cursors (chain, tip_height, tip_hash) VALUES ($1, $2, $3) ON CONFLICT (chain) DO NOTHING;

-- name: window
-- The kept headers of a chain (back to the final block), by height.
SELECT height, hash FROM chain_blocks WHERE chain = $1;

-- name: lowest_kept
-- The lowest kept header height of a chain.
SELECT min(height) FROM chain_blocks WHERE chain = $1;

-- name: kept_hash
-- The stored hash at a height, if kept.
SELECT hash FROM chain_blocks WHERE chain = $1 AND height = $2;

-- name: advance_cursor
-- Moves the checkpoint to the last block of a batch, only if the first block extends the stored tip
-- (a compare-and-set: it locks the checkpoint and refuses a second writer or a changed chain).
UPDATE chain_cursors SET tip_height = $2, tip_hash = $3, updated_at = now()
WHERE chain = $1 AND tip_height = $4 AND tip_hash = $5 AND halted_at IS NULL
RETURNING true;

-- name: add_headers
-- Keeps a batch's headers and prunes those below the final block (by depth, or the node's `finalized` tag).
WITH pruned AS (DELETE FROM chain_blocks WHERE chain = $1 AND height < $5)
INSERT INTO chain_blocks (chain, height, hash, parent_hash)
SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::text[]);

-- name: add_deposits
-- Deposits found in applied blocks; one seen unconfirmed, or orphaned, replaced or dropped and now mined
-- after all, is the same row and becomes `confirming` (the engine's queue trigger fires on each).
INSERT INTO deposits (chain, asset, txid, output_index, address, amount, block_hash, block_height, status)
SELECT $1, d.asset, d.txid, d.output_index, d.address, d.amount, d.block_hash, d.block_height, 'confirming'
FROM unnest($2::text[], $3::text[], $4::int[], $5::text[], $6::numeric[], $7::text[], $8::bigint[])
     AS d(asset, txid, output_index, address, amount, block_hash, block_height)
ON CONFLICT (chain, asset, txid, output_index) DO UPDATE
    SET status = 'confirming', block_hash = EXCLUDED.block_hash, block_height = EXCLUDED.block_height,
        orphaned_at = NULL, replaced_by = NULL, updated_at = now()
    WHERE deposits.status IN ('seen', 'orphaned', 'replaced', 'dropped')
RETURNING id AS deposit_id, chain, asset, txid, output_index, address, amount::text AS amount, status,
          ($9 - block_height + 1)::int AS confirmations, block_hash, block_height;

-- name: confirm_deposits
-- Confirming deposits that reach the required confirmations ($3) at the new tip ($2) confirm, and so do
-- confirming spends (in the same round trip). Only those rows are written: a deposit's confirmations are
-- derived (tip - block height + 1), not stored.
WITH spends AS (
    UPDATE output_spends SET status = 'confirmed', updated_at = now()
    WHERE chain = $1 AND status = 'confirming' AND block_height <= $2::bigint - $3::bigint + 1
)
UPDATE deposits SET status = 'confirmed', confirmed_at = now(), updated_at = now()
WHERE chain = $1 AND status = 'confirming' AND block_height <= $2::bigint - $3::bigint + 1
RETURNING id AS deposit_id, chain, asset, txid, output_index, address, amount::text AS amount, status,
          ($2 - block_height + 1)::int AS confirmations, block_hash, block_height;

-- name: orphan_above
-- Deposits in blocks above a height become orphaned (a reorg took their blocks away).
UPDATE deposits SET status = 'orphaned', block_hash = NULL, block_height = NULL,
       confirmed_at = NULL, orphaned_at = now(), updated_at = now()
WHERE chain = $1 AND block_height > $2 AND status IN ('confirming', 'confirmed')
RETURNING id AS deposit_id, chain, asset, txid, output_index, address, amount::text AS amount, status,
          0 AS confirmations, block_hash, block_height;

-- name: rewind_to
-- Drops the headers above a height and moves the checkpoint back to it, recording the reorg; an
-- operator's rewind also clears a halt. The checkpoint row is locked by lock_cursor.
WITH dropped AS (DELETE FROM chain_blocks WHERE chain = $1 AND height > $2),
     kept AS (INSERT INTO chain_blocks (chain, height, hash, parent_hash) SELECT $1, $2, $3, $5::text WHERE $5::text IS NOT NULL
              ON CONFLICT (chain, height) DO UPDATE SET hash = EXCLUDED.hash, parent_hash = EXCLUDED.parent_hash)
UPDATE chain_cursors SET tip_height = $2, tip_hash = $3, last_reorg_at = now(), last_reorg_depth = $4,
       halted_at = NULL, halt_reason = NULL, updated_at = now()
WHERE chain = $1;

-- name: halt
-- The follower met what it must not guess about (a reorg deeper than the kept window): it stops, and
-- no follower resumes the chain until an operator rewinds it.
UPDATE chain_cursors SET halted_at = now(), halt_reason = $2, updated_at = now() WHERE chain = $1;

-- name: set_node_tip
-- The node's tip as last seen (for `beanpay chain status`).
UPDATE chain_cursors SET node_tip_height = $2 WHERE chain = $1;

-- name: watched_since
-- Watched addresses written by transactions at or after $2 (the oldest transaction still running at
-- the previous read; 0 reads all), with the oldest one running now, to start the next read from.
-- `tracked`: an address of a shop's own wallet, whose outputs' spends the follower records.
SELECT s.xmin::text::bigint AS next_from, w.address, w.script, w.wallet_id IS NOT NULL AS tracked
FROM (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin) AS s
LEFT JOIN watched_addresses w ON w.chain = $1 AND w.created_xid >= $2::bigint::text::xid8;

-- name: backfill
-- Deposits of an already indexed block that are not yet known (a late-watched address); known ones
-- are left alone, so replaying a range twice changes nothing.
INSERT INTO deposits (chain, asset, txid, output_index, address, amount, block_hash, block_height, status,
                      confirmed_at)
SELECT $1, d.asset, d.txid, d.output_index, d.address, d.amount, $2, $3, $10::text,
       CASE WHEN $10::text = 'confirmed' THEN now() END
FROM unnest($4::text[], $5::text[], $6::int[], $7::text[], $8::numeric[]) AS d(asset, txid, output_index, address, amount)
ON CONFLICT (chain, asset, txid, output_index) DO NOTHING
RETURNING id AS deposit_id, chain, asset, txid, output_index, address, amount::text AS amount, status,
          $9::int AS confirmations, block_hash, block_height;

-- name: record_seen
-- Payments seen unconfirmed (a mempool): new deposits in status `seen`; one dropped or replaced and seen
-- again (broadcast anew) is `seen` again; others known are left alone.
INSERT INTO deposits (chain, asset, txid, output_index, address, amount, status)
SELECT $1, d.asset, d.txid, d.output_index, d.address, d.amount, 'seen'
FROM unnest($2::text[], $3::text[], $4::int[], $5::text[], $6::numeric[]) AS d(asset, txid, output_index, address, amount)
ON CONFLICT (chain, asset, txid, output_index) DO UPDATE SET status = 'seen', replaced_by = NULL, updated_at = now()
    WHERE deposits.status IN ('dropped', 'replaced')
RETURNING id AS deposit_id, chain, asset, txid, output_index, address, amount::text AS amount, status,
          0 AS confirmations, block_hash, block_height;

-- name: add_spends
-- Inputs of applied blocks spending recorded outputs; one orphaned by a reorg and mined again is the
-- same row and becomes `confirming`.
INSERT INTO output_spends (chain, txid, output_index, spending_txid, block_hash, block_height, status)
SELECT $1, s.txid, s.output_index, s.spending_txid, s.block_hash, s.block_height, 'confirming'
FROM unnest($2::text[], $3::int[], $4::text[], $5::text[], $6::bigint[])
     AS s(txid, output_index, spending_txid, block_hash, block_height)
ON CONFLICT (chain, txid, output_index, spending_txid) DO UPDATE
    SET status = 'confirming', block_hash = EXCLUDED.block_hash, block_height = EXCLUDED.block_height,
        updated_at = now()
    WHERE output_spends.status = 'orphaned';

-- name: orphan_spends_above
-- Spends in blocks above a height become orphaned (a reorg took their blocks away).
UPDATE output_spends SET status = 'orphaned', block_hash = NULL, block_height = NULL, updated_at = now()
WHERE chain = $1 AND block_height > $2 AND status IN ('confirming', 'confirmed');

-- name: unspent_outputs
-- Tracked outputs no mined input spends yet, what the follower looks for in the inputs of the blocks it
-- applies: deposits (not orphaned) at shops' own wallets, and outputs a refund or payout spends.
SELECT d.txid, d.output_index FROM deposits d JOIN watched_addresses a ON a.chain = d.chain AND a.address = d.address
WHERE d.chain = $1 AND d.status IN ('seen', 'confirming', 'confirmed')
  AND (a.wallet_id IS NOT NULL OR EXISTS (SELECT 1 FROM transfer_inputs i WHERE i.chain = d.chain
                                          AND i.txid = d.txid AND i.output_index = d.output_index))
  AND NOT EXISTS (SELECT 1 FROM output_spends s WHERE s.chain = d.chain AND s.txid = d.txid
                  AND s.output_index = d.output_index AND s.status <> 'orphaned');

-- name: spent_by_transfers
-- How many outputs refunds and payouts have set out to spend on a chain (it only grows): when it
-- moves, the follower reads its tracked outputs again.
SELECT count(*) FROM transfer_inputs WHERE chain = $1;

-- name: backfill_spends
-- Spends of an already indexed block that are not yet known (a replayed range); known ones are left alone.
INSERT INTO output_spends (chain, txid, output_index, spending_txid, block_hash, block_height, status)
SELECT $1, s.txid, s.output_index, s.spending_txid, $2, $3, $7::text
FROM unnest($4::text[], $5::int[], $6::text[]) AS s(txid, output_index, spending_txid)
ON CONFLICT (chain, txid, output_index, spending_txid) DO NOTHING;

-- name: recorded_outputs
-- Every tracked output of a chain (as unspent_outputs, spent or not): a replay looks for their spends.
SELECT d.txid, d.output_index FROM deposits d JOIN watched_addresses a ON a.chain = d.chain AND a.address = d.address
WHERE d.chain = $1 AND d.status IN ('seen', 'confirming', 'confirmed')
  AND (a.wallet_id IS NOT NULL OR EXISTS (SELECT 1 FROM transfer_inputs i WHERE i.chain = d.chain
                                          AND i.txid = d.txid AND i.output_index = d.output_index));

-- name: record_seen_inputs
-- The outputs each transaction seen paying a watched address spends: how its replacement is told later.
INSERT INTO seen_inputs (chain, txid, prev_txid, prev_vout)
SELECT $1, * FROM unnest($2::text[], $3::text[], $4::int[])
ON CONFLICT DO NOTHING;

-- name: unconfirmed_seen
-- Transactions with a deposit still `seen` (neither mined nor judged), with the outputs they spend.
SELECT i.txid, array_agg(i.prev_txid ORDER BY i.prev_txid, i.prev_vout) AS prev_txids,
       array_agg(i.prev_vout ORDER BY i.prev_txid, i.prev_vout) AS prev_vouts
FROM seen_inputs i
WHERE i.chain = $1 AND EXISTS (SELECT 1 FROM deposits d WHERE d.chain = $1 AND d.txid = i.txid AND d.status = 'seen')
GROUP BY i.txid;

-- name: mark_gone
-- A seen transaction left the mempool unmined: its deposits are `replaced` (by $4 when known) or `dropped`.
UPDATE deposits SET status = $3, replaced_by = $4, updated_at = now()
WHERE chain = $1 AND txid = $2 AND status = 'seen'
RETURNING id AS deposit_id, chain, asset, txid, output_index, address, amount::text AS amount, status,
          0 AS confirmations, block_hash, block_height;

-- name: forget_settled_inputs
-- Inputs of transactions no deposit waits on any more (mined, or judged; seen again, they are recorded again).
DELETE FROM seen_inputs i
WHERE i.chain = $1 AND NOT EXISTS (SELECT 1 FROM deposits d WHERE d.chain = $1 AND d.txid = i.txid
                                   AND d.status = 'seen');
