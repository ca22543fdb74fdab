-- name: paid_unswept
-- Paid payments on a chain whose forwarder is not yet swept, oldest first; locked, rows another
-- sweeper holds skipped.
SELECT id, order_id FROM crypto_payments
WHERE chain = $1 AND sweep_id IS NULL AND amount_received > 0
  AND (status IN ('confirmed', 'overpaid') OR resolution = 'accepted')
ORDER BY confirmed_at NULLS LAST, id LIMIT $2 FOR UPDATE SKIP LOCKED;

-- name: count_unswept
-- How many paid payments on a chain wait for a sweep.
SELECT count(*) FROM crypto_payments
WHERE chain = $1 AND sweep_id IS NULL AND amount_received > 0
  AND (status IN ('confirmed', 'overpaid') OR resolution = 'accepted');

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
