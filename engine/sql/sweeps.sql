-- name: paid_unswept
-- Paid payments on a chain whose forwarder is not yet swept, oldest first, all into the wallet of the
-- oldest (one transaction flushes to one treasury; NULL: the platform's), with that wallet's treasury;
-- locked, rows another sweeper holds skipped.
WITH oldest AS (
    SELECT wallet_id FROM crypto_payments
    WHERE chain = $1 AND sweep_id IS NULL AND amount_received > 0
      AND (status IN ('confirmed', 'overpaid') OR resolution = 'accepted')
    ORDER BY confirmed_at NULLS LAST, id LIMIT 1
)
SELECT p.id, p.order_id, w.treasury FROM crypto_payments p LEFT JOIN wallets w ON w.id = p.wallet_id
WHERE p.chain = $1 AND p.sweep_id IS NULL AND p.amount_received > 0
  AND (p.status IN ('confirmed', 'overpaid') OR p.resolution = 'accepted')
  AND p.wallet_id IS NOT DISTINCT FROM (SELECT wallet_id FROM oldest)
ORDER BY p.confirmed_at NULLS LAST, p.id LIMIT $2 FOR UPDATE OF p SKIP LOCKED;

-- name: unswept_by_treasury
-- How many paid payments on a chain wait for a sweep, per treasury they flush to ($2: the platform's).
SELECT coalesce(w.treasury, $2) AS treasury, count(*) AS forwarders
FROM crypto_payments p LEFT JOIN wallets w ON w.id = p.wallet_id
WHERE p.chain = $1 AND p.sweep_id IS NULL AND p.amount_received > 0
  AND (p.status IN ('confirmed', 'overpaid') OR p.resolution = 'accepted')
GROUP BY 1 ORDER BY 1;

-- name: start_sweep
-- Records a sweep as submitted and marks its payments (locked by paid_unswept) with it.
WITH sweep AS (INSERT INTO evm_sweeps (id, chain, status, order_ids) VALUES ($1, $2, 'submitted', $3))
UPDATE crypto_payments SET sweep_id = $1 WHERE id = ANY($4::uuid[]);

-- name: finish_sweep
-- A sweep's outcome; a failed one frees its payments for the next run (flushing twice is harmless).
WITH sweep AS (
    UPDATE evm_sweeps SET status = $2, tx_hash = coalesce($3, tx_hash), error = $4, updated_at = now()
    WHERE id = $1
)
UPDATE crypto_payments SET sweep_id = NULL WHERE sweep_id = $1 AND $2 = 'failed';
