-- name: live_claim
-- The order's claim that is active or processed, if any (the order row is locked by the caller).
SELECT status FROM order_claims WHERE order_id = $1 AND status IN ('active', 'processed');

-- name: insert_claim
-- A new active claim with its code; a code collision raises order_claims_code_uq (retried with a new code).
INSERT INTO order_claims (order_id, user_id, shop_id, claim_code, status, expires_at, pickup_time)
VALUES ($1, $2, $3, $4, 'active', now() + $5::interval, $6)
RETURNING id, order_id, user_id, shop_id, claim_code, status, claimed_at, expires_at, processed_at, pickup_time;

-- name: lock_claim
-- A claim by its code, locked (FOR UPDATE) for processing.
SELECT id, order_id, user_id, shop_id, claim_code, status, claimed_at, expires_at, processed_at, pickup_time
FROM order_claims WHERE claim_code = $1 FOR UPDATE;

-- name: process_claim
-- The claim is handed over (guarded: still active and not expired).
UPDATE order_claims SET status = 'processed', processed_at = now()
WHERE id = $1 AND status = 'active' AND (expires_at IS NULL OR expires_at > now())
RETURNING id, order_id, user_id, shop_id, claim_code, status, claimed_at, expires_at, processed_at, pickup_time;

-- name: latest_claim
-- The order's most recent claim (any status); reads without locking.
SELECT id, order_id, user_id, shop_id, claim_code, status, claimed_at, expires_at, processed_at, pickup_time
FROM order_claims WHERE order_id = $1 ORDER BY claimed_at DESC LIMIT 1;
