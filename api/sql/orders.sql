-- name: load
-- An order with its payment, items and Lightning invoice in one round trip; confirmations are live: the fewest of its
-- live deposits at the indexed tip (the payment's stored count moves only with its status).
SELECT o.id, o.shop_id, o.user_id, o.order_status, o.payment_status, o.order_type, o.pickup_time, o.delivery_address,
       o.special_instructions, o.total_amount, o.currency, o.expires_at, o.version, o.created_at, o.updated_at,
       p.id AS p_id, p.chain AS p_chain, p.crypto_currency AS p_asset, p.decimals, p.wallet_address,
       p.crypto_amount AS p_amount, p.amount_received, p.token_address, p.chain_id, p.payment_uri,
       p.exchange_rate, p.rate_source, p.fiat_amount, p.fiat_currency, p.status AS p_status,
       p.transaction_hash, p.expires_at AS p_expires_at, p.confirmed_at, p.resolution,
       coalesce((SELECT min(CASE WHEN d.status = 'seen' THEN 0
                                 ELSE greatest(coalesce(c.tip_height - d.block_height + 1, 0), 0) END)
                 FROM deposits d LEFT JOIN chain_cursors c ON c.chain = d.chain
                 WHERE d.chain = p.chain AND d.address = p.wallet_address AND d.asset = p.crypto_currency
                 AND d.status IN ('seen', 'confirming', 'confirmed')), 0)::int AS live_confirmations,
       (SELECT coalesce(json_agg(json_build_object(
                   'product_id', i.product_id, 'product_name', i.product_name, 'base_price', i.base_price::text,
                   'final_price', i.final_price::text, 'quantity', i.quantity, 'customizations', i.customizations)
                   ORDER BY i.id), '[]') FROM order_items i WHERE i.order_id = o.id)::text AS items,
       l.bolt11 AS ln_bolt11, l.payment_hash AS ln_hash, l.amount_msat AS ln_amount_msat,
       l.expires_at AS ln_expires_at, l.state AS ln_state, l.description AS ln_description
FROM coffee_orders o JOIN crypto_payments p ON p.order_id = o.id
LEFT JOIN LATERAL (  -- its Lightning invoice: the settled one, else the open one, else the newest
    SELECT * FROM lightning_invoices li WHERE li.payment_id = p.id
    ORDER BY li.state = 'settled' DESC, li.state = 'open' DESC, li.created_at DESC LIMIT 1) l ON true
WHERE o.id = $1;

-- name: page
-- Orders after the keyset cursor ($2, $3), filtered (each optional) by customer $4, shop $5, order
-- status $6 and payment status $7.
SELECT id, shop_id, user_id, order_status AS status, payment_status, total_amount, currency, chain,
       crypto_currency AS asset, created_at
FROM coffee_orders
WHERE ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3::uuid))
  AND ($4::uuid IS NULL OR user_id = $4) AND ($5::uuid IS NULL OR shop_id = $5)
  AND ($6::text IS NULL OR order_status = $6) AND ($7::text IS NULL OR payment_status = $7)
ORDER BY created_at, id LIMIT $1;

-- name: head
-- What changing an order needs to know before its transaction: its asset and currency.
SELECT chain, crypto_currency, currency FROM coffee_orders WHERE id = $1;

-- name: owner
-- Who may see an order: its customer and its shop.
SELECT user_id, shop_id FROM coffee_orders WHERE id = $1;
