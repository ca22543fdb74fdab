-- name: status
-- A chain's checkpoint with what `beanpay chain status` shows: tips, last reorg, halt, watched addresses.
SELECT c.tip_height, c.node_tip_height, c.last_reorg_at, c.last_reorg_depth, c.halted_at, c.halt_reason,
       (SELECT count(*) FROM watched_addresses w WHERE w.chain = $1) AS watched
FROM (SELECT 1) AS one LEFT JOIN chain_cursors c ON c.chain = $1;

-- name: deposit_counts
-- A chain's deposits by status.
SELECT status, count(*) AS n FROM deposits WHERE chain = $1 GROUP BY status;

-- name: affected_by_rewind
-- The live deposits a rewind to a height would orphan, with their orders.
SELECT d.id AS deposit_id, d.txid, d.output_index, d.address, d.amount::text AS amount, d.status, d.block_height,
       w.order_id
FROM deposits d JOIN watched_addresses w ON w.chain = d.chain AND w.address = d.address
WHERE d.chain = $1 AND d.block_height > $2 AND d.status IN ('confirming', 'confirmed')
ORDER BY d.block_height, d.txid, d.output_index;

-- name: all_watched
-- Every watched address of a chain (a replay matches blocks against all of them); `tracked`: a shop's
-- own wallet's, whose outputs' spends are recorded.
SELECT address, script, wallet_id IS NOT NULL AS tracked FROM watched_addresses WHERE chain = $1;
