-- name: insert
-- A new endpoint with its signing secret (the secret is never read back by the API), carrying refunds'
-- claim tokens if $6.
INSERT INTO webhook_endpoints (shop_id, url, event_types, secret, description, refund_claims)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING id, shop_id, url, event_types, description, enabled, version, created_at, updated_at, refund_claims;

-- name: fetch
-- A shop's endpoint.
SELECT id, shop_id, url, event_types, description, enabled, version, created_at, updated_at, refund_claims
FROM webhook_endpoints WHERE id = $1 AND shop_id = $2;

-- name: lock
-- A shop's endpoint, locked (FOR UPDATE) for a change.
SELECT id, shop_id, url, event_types, description, enabled, version, created_at, updated_at, refund_claims
FROM webhook_endpoints WHERE id = $1 AND shop_id = $2 FOR UPDATE;

-- name: of_shop
-- A shop's endpoints, oldest first.
SELECT id, shop_id, url, event_types, description, enabled, version, created_at, updated_at, refund_claims
FROM webhook_endpoints WHERE shop_id = $1 ORDER BY created_at;

-- name: update
-- Writes an endpoint's fields (the patch merged into the locked row).
UPDATE webhook_endpoints SET url = $2, event_types = $3, description = $4, enabled = $5, refund_claims = $6,
       version = version + 1, updated_at = now()
WHERE id = $1
RETURNING id, shop_id, url, event_types, description, enabled, version, created_at, updated_at, refund_claims;

-- name: delete
-- Removes an endpoint and (cascading) its deliveries.
DELETE FROM webhook_endpoints WHERE id = $1;

-- name: deliveries
-- An endpoint's deliveries after the keyset cursor ($3, $4), optionally in status $5.
SELECT id, endpoint_id, event_id, event_type, status, attempts, next_attempt_at, last_status, last_error,
       created_at, delivered_at
FROM webhook_deliveries
WHERE endpoint_id = $1 AND ($3::timestamptz IS NULL OR (created_at, id) > ($3, $4::uuid))
  AND ($5::text IS NULL OR status = $5)
ORDER BY created_at, id LIMIT $2;

-- name: delivery_of
-- Whether a delivery belongs to an endpoint.
SELECT EXISTS (SELECT 1 FROM webhook_deliveries WHERE id = $1 AND endpoint_id = $2);
