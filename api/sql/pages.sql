-- name: checkout_context
-- What the checkout page shows beside the order itself: the shop, the invoice the order pays (if any),
-- the order's newest claim, and whether a payment seen unconfirmed was since replaced or dropped (the
-- customer is told why the order waits again).
SELECT s.name AS shop_name, s.address AS shop_address, i.id AS invoice_id, i.order_ref, i.redirect_url, i.speed,
       c.claim_code, c.status AS claim_status, c.expires_at AS claim_expires_at,
       (SELECT d.status FROM crypto_payments p
        JOIN deposits d ON d.chain = p.chain AND d.address = p.wallet_address AND d.asset = p.crypto_currency
        WHERE p.order_id = o.id AND d.status IN ('replaced', 'dropped')
        ORDER BY d.updated_at DESC LIMIT 1) AS lost_payment
FROM coffee_orders o
JOIN coffee_shops s ON s.id = o.shop_id
LEFT JOIN invoices i ON i.order_id = o.id
LEFT JOIN LATERAL (SELECT claim_code, status, expires_at FROM order_claims
                   WHERE order_id = o.id ORDER BY claimed_at DESC LIMIT 1) c ON true
WHERE o.id = $1;

-- name: invoice_context
-- An invoice whose asset is not picked yet, for its checkout page: the invoice, its state and its shop.
SELECT v.id, v.order_id, v.amount, v.currency, v.assets, v.order_ref, v.redirect_url, v.status, v.expires_at,
       v.created_at, s.name AS shop_name, s.address AS shop_address
FROM invoice_states v JOIN coffee_shops s ON s.id = v.shop_id WHERE v.id = $1;

-- name: payments_seen
-- The transactions that paid an order (receipts list each), oldest first; orphaned ones are left out.
SELECT d.txid, d.output_index, d.amount, d.status, d.block_height, d.first_seen_at
FROM crypto_payments p
JOIN deposits d ON d.chain = p.chain AND d.address = p.wallet_address AND d.asset = p.crypto_currency
WHERE p.order_id = $1 AND d.status IN ('seen', 'confirming', 'confirmed')
ORDER BY d.first_seen_at, d.txid, d.output_index;

-- name: refunds_of
-- An order's refunds, for its receipt: amount, state and transaction (cancelled ones are left out).
SELECT id, chain, asset, decimals, amount, status, txid, created_at
FROM transfers WHERE order_id = $1 AND kind = 'refund' AND status <> 'cancelled'
ORDER BY created_at, id;

-- name: shop_name
-- A shop's name, for a page that names it.
SELECT name FROM coffee_shops WHERE id = $1;
