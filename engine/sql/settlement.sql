-- name: lock_payments
-- The payments at these (chain, address) pairs with their orders' status, shop and trace, both rows locked
-- (FOR UPDATE) in address order, the same in every engine, so two batches never deadlock.
SELECT p.id, p.order_id, p.user_id, p.chain, p.crypto_currency, p.crypto_amount, p.amount_received, p.decimals,
       p.fiat_amount, p.fiat_currency, p.exchange_rate, p.wallet_address, p.transaction_hash, p.block_number,
       p.confirmations, p.status, p.expires_at, p.confirmed_at, p.resolution, p.credited, p.token_address,
       p.chain_id, p.payment_uri, p.rate_source, o.order_status, o.shop_id, p.tolerance_bps, p.speed,
       o.trace_parent, p.wallet_id
FROM crypto_payments p JOIN coffee_orders o ON o.id = p.order_id
JOIN unnest($1::text[], $2::text[]) AS k(chain, address) ON p.chain = k.chain AND p.wallet_address = k.address
WHERE p.address_released_at IS NULL  -- a recycled address's deposits are its new order's
ORDER BY p.chain, p.wallet_address
FOR UPDATE OF p, o;

-- name: credited_custodial
-- Of what each of these payments ($1) credited its shop, how much the platform holds. A statement of its own,
-- run once the payments are locked: its snapshot then sees what a settlement that held the lock committed
-- (a subquery of the locking statement would read the snapshot from before it waited).
SELECT l.payment_id, -sum(l.amount) AS credited
FROM ledger_entries l JOIN crypto_payments p ON p.id = l.payment_id
WHERE l.payment_id = ANY($1::uuid[]) AND l.account LIKE 'merchant:%' AND l.kind IN ('payment', 'reversal')
  AND coalesce(l.custodial, p.wallet_id IS NULL)
GROUP BY l.payment_id;

-- name: deposits_at
-- Every deposit (orphaned ones too) at these addresses, oldest first, with its confirmations at the
-- indexed tip; and the settled Lightning invoices of the payments at them, which count as deposits
-- confirmed at once (whole sats: a sub-sat remainder is the merchant's node's, not the ledger's; the
-- payment hash stands for a txid), held by the platform when its node issued them (NULL for on-chain
-- deposits: the payment's wallet holds them). An invoice settled once it should no longer have been paid
-- counts from after the payment window: a late payment. Locks nothing: the indexer's later changes
-- re-queue the address.
SELECT * FROM (
    SELECT d.chain, d.address, d.asset, d.txid, d.amount, d.status, d.first_seen_at,
           CASE WHEN d.status IN ('confirming', 'confirmed')
                THEN greatest(coalesce(c.tip_height - d.block_height + 1, 0), 0)::int ELSE 0 END AS confirmations,
           d.block_height, NULL::boolean AS held_by_platform
    FROM deposits d JOIN unnest($1::text[], $2::text[]) AS k(chain, address) ON d.chain = k.chain AND d.address = k.address
    LEFT JOIN chain_cursors c ON c.chain = d.chain
    UNION ALL
    SELECT p.chain, p.wallet_address, p.crypto_currency, l.payment_hash, div(l.amt_paid_msat, 1000), 'confirmed',
           CASE WHEN l.late THEN greatest(l.settled_at, p.expires_at + interval '1 millisecond') ELSE l.settled_at END,
           0, NULL::bigint, n.shop_id IS NULL
    FROM lightning_invoices l JOIN crypto_payments p ON p.id = l.payment_id JOIN lightning_nodes n ON n.id = l.node_id
    JOIN unnest($1::text[], $2::text[]) AS k(chain, address) ON p.chain = k.chain AND p.wallet_address = k.address
    WHERE l.state = 'settled' AND p.address_released_at IS NULL
) AS every ORDER BY first_seen_at, txid;

-- name: settle_payments
-- Writes re-assessed payments, each only if still in the status it was assessed from (guarded; the
-- rows are locked by lock_payments).
UPDATE crypto_payments p SET status = w.status, amount_received = w.received, confirmations = w.confs,
       transaction_hash = w.txid, block_number = w.block,
       confirmed_at = CASE WHEN w.paid THEN coalesce(p.confirmed_at, now()) END,
       credited = w.credit, updated_at = now()
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::numeric[], $5::int[], $6::text[], $7::bigint[], $8::bool[],
            $9::numeric[]) AS w(id, from_status, status, received, confs, txid, block, paid, credit)
WHERE p.id = w.id AND p.status = w.from_status
RETURNING p.id, p.order_id, p.user_id, p.chain, p.crypto_currency, p.crypto_amount, p.amount_received, p.decimals,
          p.fiat_amount, p.fiat_currency, p.exchange_rate, p.wallet_address, p.transaction_hash, p.block_number,
          p.confirmations, p.status, p.expires_at, p.confirmed_at, p.resolution, p.credited, p.token_address,
          p.chain_id, p.payment_uri, p.rate_source;

-- name: settle_orders
-- Moves orders with their payments, each only if still in the status it was decided from (guarded).
UPDATE coffee_orders o SET payment_status = w.payment_status, order_status = w.order_status,
       version = o.version + CASE WHEN w.order_status <> o.order_status THEN 1 ELSE 0 END, updated_at = now()
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) AS w(id, from_status, payment_status, order_status)
WHERE o.id = w.id AND o.order_status = w.from_status
RETURNING o.id, o.user_id, o.shop_id, o.total_amount, o.currency, o.crypto_amount, o.crypto_currency, o.chain,
          o.payment_status, o.order_status, o.order_type, o.pickup_time, o.delivery_address,
          o.special_instructions, o.expires_at, o.version, o.created_at, o.updated_at;

-- name: lock_payment_of_order
-- An order's payment, locked (FOR UPDATE) for the merchant's resolution.
SELECT id, order_id, user_id, chain, crypto_currency, crypto_amount, amount_received, decimals, fiat_amount,
       fiat_currency, exchange_rate, wallet_address, transaction_hash, block_number, confirmations, status,
       expires_at, confirmed_at, resolution, credited, token_address, chain_id, payment_uri, rate_source
FROM crypto_payments WHERE order_id = $1 FOR UPDATE;

-- name: live_deposits
-- The live (not orphaned) deposits of a payment's asset at its address, its settled Lightning invoices too,
-- each with who holds it (NULL: the payment's wallet).
SELECT status, amount, NULL::boolean AS held_by_platform FROM deposits
WHERE chain = $1 AND address = $2 AND asset = $3 AND status IN ('seen', 'confirming', 'confirmed')
UNION ALL
SELECT 'confirmed', div(l.amt_paid_msat, 1000), n.shop_id IS NULL
FROM lightning_invoices l JOIN crypto_payments p ON p.id = l.payment_id JOIN lightning_nodes n ON n.id = l.node_id
WHERE p.chain = $1 AND p.wallet_address = $2 AND p.crypto_currency = $3 AND p.address_released_at IS NULL
  AND l.state = 'settled';

-- name: credit_custody
-- A payment's wallet (NULL: the platform's) and how much of what the shop was credited for it the platform
-- holds.
SELECT p.wallet_id,
       (SELECT -coalesce(sum(l.amount), 0) FROM ledger_entries l
        WHERE l.payment_id = p.id AND l.account = 'merchant:' || $2::text AND l.kind IN ('payment', 'reversal')
          AND coalesce(l.custodial, p.wallet_id IS NULL)) AS credited_custodial
FROM crypto_payments p WHERE p.id = $1;

-- name: mark_resolved
-- Records the merchant's resolution of a payment exception, once (guarded: not yet resolved).
UPDATE crypto_payments SET resolution = $2, resolved_at = now(), updated_at = now()
WHERE id = $1 AND resolution IS NULL
RETURNING id, order_id, user_id, chain, crypto_currency, crypto_amount, amount_received, decimals, fiat_amount,
          fiat_currency, exchange_rate, wallet_address, transaction_hash, block_number, confirmations, status,
          expires_at, confirmed_at, resolution, credited, token_address, chain_id, payment_uri, rate_source;

-- name: set_credited
-- What the shop has been credited for a payment so far (the row is locked by the caller).
UPDATE crypto_payments SET credited = $2 WHERE id = $1;
