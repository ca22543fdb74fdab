-- name: lookup
-- The answer stored under a principal's Idempotency-Key, unless it has expired.
SELECT request_hash, status_code, response_body FROM idempotency_keys
WHERE principal = $1 AND key = $2 AND expires_at > now();

-- name: record
-- Stores the answer in the transaction of the change it answers for. If the key is taken and not
-- expired (a concurrent request with the same key committed first; this insert waited for it),
-- nothing is returned: the caller rolls back and replays that answer. An expired row is replaced.
INSERT INTO idempotency_keys (principal, key, method, path, request_hash, status_code, response_body, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (principal, key) DO UPDATE
    SET method = EXCLUDED.method, path = EXCLUDED.path, request_hash = EXCLUDED.request_hash,
        status_code = EXCLUDED.status_code, response_body = EXCLUDED.response_body,
        created_at = now(), expires_at = EXCLUDED.expires_at
    WHERE idempotency_keys.expires_at <= now()
RETURNING true;

-- name: prune
-- Deletes a batch of expired keys; rows another pruner holds are skipped (SKIP LOCKED).
DELETE FROM idempotency_keys WHERE (principal, key) IN (
    SELECT principal, key FROM idempotency_keys WHERE expires_at <= now() LIMIT $1 FOR UPDATE SKIP LOCKED);
