-- name: add
-- A new invoice, no asset picked yet (no quote, no address).
INSERT INTO invoices (id, shop_id, amount, currency, assets, order_ref, buyer_email, redirect_url, tolerance_bps,
                      speed, expires_at, created_by)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
RETURNING id;

-- name: get
-- One invoice with its status: its payment's once an asset is picked; before, new or expired; cancelled
-- when called off. Exceptions are the payment's underpaid, overpaid and late.
SELECT * FROM (
    SELECT i.id, i.shop_id, i.order_id, i.amount, i.currency, i.assets, i.order_ref, i.buyer_email, i.redirect_url,
           i.tolerance_bps, i.speed, i.expires_at, i.cancelled_at, i.created_at, i.updated_at, i.version,
           CASE WHEN i.cancelled_at IS NOT NULL THEN 'cancelled'
                WHEN p.id IS NULL THEN CASE WHEN i.expires_at <= now() THEN 'expired' ELSE 'new' END
                ELSE p.status END AS status,
           CASE WHEN p.status IN ('underpaid', 'overpaid', 'late') THEN p.status END AS exception
    FROM invoices i LEFT JOIN crypto_payments p ON p.order_id = i.order_id
    WHERE i.id = $1
) AS one;

-- name: lock
-- An invoice row, locked (FOR UPDATE) while its asset is picked or it is cancelled.
SELECT id, shop_id, order_id, amount, currency, assets, order_ref, buyer_email, redirect_url, tolerance_bps, speed,
       expires_at, cancelled_at, created_at, updated_at, version, 'new' AS status, NULL::text AS exception
FROM invoices WHERE id = $1 FOR UPDATE;

-- name: page
-- A shop's invoices, newest first, before a (created_at, id) keyset cursor, filtered by status ($5),
-- exception ($6) and creation time ($7 <= created_at < $8).
SELECT * FROM (
    SELECT i.id, i.shop_id, i.order_id, i.amount, i.currency, i.assets, i.order_ref, i.buyer_email, i.redirect_url,
           i.tolerance_bps, i.speed, i.expires_at, i.cancelled_at, i.created_at, i.updated_at, i.version,
           CASE WHEN i.cancelled_at IS NOT NULL THEN 'cancelled'
                WHEN p.id IS NULL THEN CASE WHEN i.expires_at <= now() THEN 'expired' ELSE 'new' END
                ELSE p.status END AS status,
           CASE WHEN p.status IN ('underpaid', 'overpaid', 'late') THEN p.status END AS exception
    FROM invoices i LEFT JOIN crypto_payments p ON p.order_id = i.order_id
    WHERE i.shop_id = $1 AND (i.created_at, i.id) < ($2, $3)
      AND i.created_at >= coalesce($7, '-infinity'::timestamptz) AND i.created_at < coalesce($8, 'infinity'::timestamptz)
) AS listed
WHERE ($5::text IS NULL OR status = $5) AND ($6::text IS NULL OR exception = $6)
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
