-- name: claim
-- The oldest queued deposit changes, skipping rows another engine holds; deleted in this transaction,
-- so a crash before commit leaves them queued. A change still uncommitted in the indexer is invisible
-- here and gets its own row, so it is always settled after it commits.
DELETE FROM payment_queue WHERE id IN (
    SELECT id FROM payment_queue WHERE queued_at <= clock_timestamp()
    ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
RETURNING chain, address, queued_at;

-- name: requeue
-- An address whose settlement failed goes back in the queue, to be tried again in 5 seconds.
INSERT INTO payment_queue (chain, address, queued_at) VALUES ($1, $2, clock_timestamp() + interval '5 s');
