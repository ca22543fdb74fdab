-- name: due_payments
-- Unpaid payments past their window (plus a grace that lets a deposit seen at the very end reach the
-- engine first) with no live deposit; payment and order rows locked, rows other engines hold skipped.
SELECT p.id, p.order_id, p.user_id, p.chain, p.crypto_currency, p.crypto_amount, p.amount_received, p.decimals,
       p.fiat_amount, p.fiat_currency, p.exchange_rate, p.wallet_address, p.transaction_hash, p.block_number,
       p.confirmations, p.status, p.expires_at, p.confirmed_at, p.resolution, p.credited, p.token_address,
       p.chain_id, p.payment_uri, p.rate_source, o.order_status, o.shop_id
FROM crypto_payments p JOIN coffee_orders o ON o.id = p.order_id
WHERE p.status = 'pending' AND p.expires_at + $2::interval <= now()
  AND NOT EXISTS (SELECT 1 FROM deposits d WHERE d.chain = p.chain AND d.address = p.wallet_address
                  AND d.status IN ('seen', 'confirming', 'confirmed'))
  AND NOT EXISTS (SELECT 1 FROM lightning_invoices l WHERE l.payment_id = p.id AND l.state = 'settled')
ORDER BY p.expires_at LIMIT $1
FOR UPDATE OF p, o SKIP LOCKED;

-- name: expire_payments
-- The due payments expire (guarded: still pending; locked by due_payments).
UPDATE crypto_payments SET status = 'expired', updated_at = now()
WHERE id = ANY($1::uuid[]) AND status = 'pending'
RETURNING id, order_id, user_id, chain, crypto_currency, crypto_amount, amount_received, decimals, fiat_amount,
          fiat_currency, exchange_rate, wallet_address, transaction_hash, block_number, confirmations, status,
          expires_at, confirmed_at, resolution, credited, token_address, chain_id, payment_uri, rate_source;

-- name: expire_orders
-- Their orders' payment status becomes expired; an order still pending expires with it (guarded by the
-- transition table's sources for `expired`, $2), any other keeps its status.
UPDATE coffee_orders SET payment_status = 'expired',
       order_status = CASE WHEN order_status = ANY($2::text[]) THEN 'expired' ELSE order_status END,
       version = version + 1, updated_at = now()
WHERE id = ANY($1::uuid[])
RETURNING id, user_id, shop_id, total_amount, currency, crypto_amount, crypto_currency, chain, payment_status,
          order_status, order_type, pickup_time, delivery_address, special_instructions, expires_at, version,
          created_at, updated_at;

-- name: expire_claims
-- Active claims past their time expire (a batch, skipping rows another engine holds); the order can
-- then be claimed again.
UPDATE order_claims SET status = 'expired'
WHERE id IN (SELECT id FROM order_claims WHERE status = 'active' AND expires_at <= now()
             ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)
RETURNING id, order_id, user_id, shop_id, claim_code, status, claimed_at, expires_at, processed_at, pickup_time;
