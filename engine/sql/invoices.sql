-- name: add
-- A new invoice, no asset picked yet (no quote, no address).
INSERT INTO invoices (id, shop_id, amount, currency, assets, order_ref, buyer_email, redirect_url, tolerance_bps,
                      speed, expires_at, created_by)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
RETURNING id;

-- name: get
-- One invoice with its derived status (the invoice_states view).
SELECT id, shop_id, order_id, amount, currency, assets, order_ref, buyer_email, redirect_url, tolerance_bps, speed,
       expires_at, cancelled_at, created_at, updated_at, version, status, exception
FROM invoice_states WHERE id = $1;

-- name: lock
-- Locks an invoice row (FOR UPDATE) while its asset is picked or it is cancelled; read it with `get`.
SELECT id FROM invoices WHERE id = $1 FOR UPDATE;

-- name: page
-- A shop's invoices, newest first, before a (created_at, id) keyset cursor, filtered by status ($5),
-- exception ($6) and creation time ($7 <= created_at < $8).
SELECT id, shop_id, order_id, amount, currency, assets, order_ref, buyer_email, redirect_url, tolerance_bps, speed,
       expires_at, cancelled_at, created_at, updated_at, version, status, exception
FROM invoice_states
WHERE shop_id = $1 AND (created_at, id) < ($2, $3)
  AND created_at >= coalesce($7, '-infinity'::timestamptz) AND created_at < coalesce($8, 'infinity'::timestamptz)
  AND ($5::text IS NULL OR status = $5) AND ($6::text IS NULL OR exception = $6)
ORDER BY created_at DESC, id DESC LIMIT $4;

-- name: cancel
-- The invoice is called off (guarded: not already).
UPDATE invoices SET cancelled_at = now(), updated_at = now(), version = version + 1
WHERE id = $1 AND cancelled_at IS NULL;

-- name: shop_of
-- The shop an invoice belongs to (access is checked before anything is locked).
SELECT shop_id FROM invoices WHERE id = $1;

-- name: shop_exists
-- Whether a shop (not deleted) exists.
SELECT id FROM coffee_shops WHERE id = $1 AND status <> 'deleted';
