-- name: begin_order
-- Everything placing an order reads, in one round trip (run first): the shop's
-- status and currency, the menu rows of the ordered products (the shop's price and options, whether stock is
-- tracked), the answer stored under the request's Idempotency-Key, the shop's own wallet on the chain ($6)
-- if it has one, and for Bitcoin into the platform's wallet the next derivation index (locking the
-- chain's counter until commit: gap-free, so Bitcoin orders always run in a transaction). One row per
-- menu product, or a single row with no product when none matches.
WITH shop AS (
    SELECT status, currency FROM coffee_shops WHERE id = $1
), menu AS (
    SELECT p.id AS product_id, p.name, sp.customizations::text AS customizations, sp.price,
           EXISTS (SELECT 1 FROM coffee_supplies cs WHERE cs.shop_id = sp.shop_id AND cs.product_id = p.id) AS stocked
    FROM shop_products sp JOIN products p ON p.id = sp.product_id
    WHERE sp.shop_id = $1 AND sp.product_id = ANY($2::uuid[]) AND sp.available AND p.status = 'active'
), stored AS (
    SELECT request_hash, status_code, response_body FROM idempotency_keys
    WHERE principal = $3 AND key = $4 AND expires_at > now()
), wallet AS (
    SELECT id AS wallet_id, account_key, treasury FROM wallets WHERE shop_id = $1 AND chain = $6 AND retired_at IS NULL
), btc AS (
    INSERT INTO address_counters (chain, next_index) SELECT 'btc', 1 WHERE $5::bool AND NOT EXISTS (SELECT 1 FROM wallet)
    ON CONFLICT (chain) DO UPDATE SET next_index = address_counters.next_index + 1
    RETURNING next_index - 1 AS btc_index
)
SELECT shop.status AS shop_status, shop.currency, stored.request_hash, stored.status_code, stored.response_body,
       btc.btc_index, wallet.wallet_id, wallet.account_key, wallet.treasury, menu.product_id, menu.name,
       menu.customizations, menu.price, menu.stocked
FROM (SELECT 1) AS one
LEFT JOIN shop ON true LEFT JOIN stored ON true LEFT JOIN btc ON true LEFT JOIN wallet ON true LEFT JOIN menu ON true;

-- name: write_order
-- Writes a priced order in one statement: holds stock (inventory.sql's hold_stock), the order, its items and
-- reservations, the watched address (a recycled one re-pointed at this order), the payment into
-- :wallet_id (NULL: the platform's) with its tolerance and speed, the order's invoice (:invoice_id, or
-- :picked_invoice_id whose asset was just picked), the audit row, the trace it continues, the events and the
-- answer stored under the Idempotency-Key (when one was sent). One row per stock-tracked product (`held` false:
-- not enough, the caller rolls back), or one row with no product; `recorded` false means the key was
-- taken meanwhile (the caller rolls back and replays). With :alone (sent on its own, committing as it
-- ends) it declines (needs_transaction, nothing written) unless the case is the common one: every
-- product held, no supply's status changed (no low-stock alert to decide), the key recorded.
-- The caller wakes the relay after commit.
WITH /* part: hold_stock */, new_order AS (
    INSERT INTO coffee_orders (id, user_id, shop_id, total_amount, currency, crypto_amount, crypto_currency, chain,
                               order_type, pickup_time, delivery_address, special_instructions, expires_at,
                               created_at, updated_at, trace_parent)
    VALUES (:order_id, :user_id, :shop_id, :total, :currency, :crypto_amount, :crypto_currency, :chain, :order_type, :pickup_time, :delivery_address, :special_instructions, :expires_at, :now, :now, :trace_parent)
), items AS (
    INSERT INTO order_items (order_id, product_id, product_name, base_price, final_price, quantity, customizations)
    SELECT :order_id, * FROM unnest(:item_products::uuid[], :item_names::text[], :item_base_prices::numeric[], :item_final_prices::numeric[], :item_quantities::int[], :item_customizations::jsonb[])
), reservations AS (
    INSERT INTO order_reservations (order_id, supply_id, quantity, status) SELECT :order_id, id, held, 'reserved' FROM held
), watched AS (
    INSERT INTO watched_addresses (chain, address, script, derivation_index, key_chain, order_id, wallet_id)
    VALUES (:chain, :address, :script, :derivation_index, CASE WHEN :derivation_index::bigint IS NOT NULL THEN 0 END, :order_id, :wallet_id)
    ON CONFLICT (chain, address) DO UPDATE SET order_id = EXCLUDED.order_id  -- a recycled address
        WHERE watched_addresses.wallet_id = EXCLUDED.wallet_id
), payment AS (
    INSERT INTO crypto_payments (id, order_id, user_id, chain, crypto_currency, crypto_amount, decimals, fiat_amount,
                                 fiat_currency, exchange_rate, wallet_address, expires_at, token_address, chain_id,
                                 payment_uri, rate_source, rate_as_of, created_at, updated_at, wallet_id,
                                 tolerance_bps, speed)
    VALUES (:payment_id, :order_id, :user_id, :chain, :crypto_currency, :crypto_amount, :decimals, :total, :currency, :rate, :address, :expires_at, :token_address, :chain_id, :payment_uri, :rate_source, :rate_as_of, :now, :now, :wallet_id, :tolerance_bps, :speed)
), invoice AS (  -- a coffee order's own invoice, its asset picked with it
    INSERT INTO invoices (id, shop_id, order_id, amount, currency, assets, tolerance_bps, speed, expires_at,
                          created_at, updated_at)
    SELECT :invoice_id, :shop_id, :order_id, :total, :currency, :invoice_assets, :tolerance_bps, :speed, :expires_at, :now, :now WHERE :picked_invoice_id::uuid IS NULL
), picked AS (  -- an integration's invoice whose asset the customer just picked
    UPDATE invoices SET order_id = :order_id, updated_at = :now, version = version + 1 WHERE id = :picked_invoice_id AND order_id IS NULL
), audited AS (
    INSERT INTO audit_log (actor_id, actor_role, action, entity_type, entity_id, after, request_id)
    VALUES (:actor_id, :actor_role, 'order.create', 'order', :order_id::text, :audit_after, :request_id)
), events AS (
    INSERT INTO event_outbox (event_id, event_type, topic, aggregate_type, aggregate_id, payload, trace_parent)
    SELECT event_id, event_type, topic, 'order', :order_id::text, payload, :trace_parent
    FROM unnest(:event_ids::uuid[], :event_types::text[], :event_topics::text[], :event_payloads::jsonb[])
         WITH ORDINALITY AS e(event_id, event_type, topic, payload, n)
    ORDER BY n
), answer AS (
    INSERT INTO idempotency_keys (principal, key, method, path, request_hash, status_code, response_body, expires_at)
    SELECT :key_principal::text, :key::text, :key_method::text, :key_path::text, :key_request_hash::bytea, :key_status::int, :key_body::bytea, :key_expires_at::timestamptz
    WHERE :key::text IS NOT NULL
    ON CONFLICT (principal, key) DO UPDATE
        SET method = EXCLUDED.method, path = EXCLUDED.path, request_hash = EXCLUDED.request_hash,
            status_code = EXCLUDED.status_code, response_body = EXCLUDED.response_body,
            created_at = now(), expires_at = EXCLUDED.expires_at
        WHERE idempotency_keys.expires_at <= now()
    RETURNING true
)
SELECT :key::text IS NULL OR EXISTS (SELECT 1 FROM answer) AS recorded, r.*
FROM (SELECT 1) AS one LEFT JOIN (
    SELECT o.id AS supply_id, o.product_id, h.id IS NOT NULL AS held,
           CASE WHEN o.discontinued THEN 0 ELSE o.quantity - o.reserved END AS available_before,
           o.status AS status_before, h.status AS status_after, h.quantity, h.reserved, h.reorder_level
    FROM old o LEFT JOIN held h ON h.id = o.id
) AS r ON true
WHERE CASE WHEN :alone::bool AND ((:key::text IS NOT NULL AND NOT EXISTS (SELECT 1 FROM answer))
                               OR EXISTS (SELECT 1 FROM old o LEFT JOIN held h ON h.id = o.id
                                          WHERE h.id IS NULL OR h.status <> o.status))
           THEN needs_transaction('stock short or changing status, or the key taken')
           ELSE true END;

-- name: menu_lines
-- The menu rows of these products at a shop (price, options, whether stock is tracked), as
-- begin_order reads them; for re-pricing a changed order.
SELECT p.id AS product_id, p.name, sp.customizations::text AS customizations, sp.price,
       EXISTS (SELECT 1 FROM coffee_supplies cs WHERE cs.shop_id = sp.shop_id AND cs.product_id = p.id) AS stocked
FROM shop_products sp JOIN products p ON p.id = sp.product_id
WHERE sp.shop_id = $1 AND sp.product_id = ANY($2::uuid[]) AND sp.available AND p.status = 'active';

-- name: lock_order
-- The order row, locked (FOR UPDATE) for a change decided in Python.
SELECT id, user_id, shop_id, total_amount, currency, crypto_amount, crypto_currency, chain, payment_status,
       order_status, order_type, pickup_time, delivery_address, special_instructions, expires_at, version,
       created_at, updated_at
FROM coffee_orders WHERE id = $1 FOR UPDATE;

-- name: move_order
-- Moves an order to status $2 if it is in one of the states $3 (the transition table's sources for
-- $2) and its payment in one of $4; locks the row. No row: it was not (or does not exist).
UPDATE coffee_orders SET order_status = $2, version = version + 1, updated_at = now()
WHERE id = $1 AND order_status = ANY($3::text[]) AND payment_status = ANY($4::text[])
RETURNING id, user_id, shop_id, total_amount, currency, crypto_amount, crypto_currency, chain, payment_status,
          order_status, order_type, pickup_time, delivery_address, special_instructions, expires_at, version,
          created_at, updated_at;

-- name: order_status
-- An order's current statuses, to say why a guarded move found no row.
SELECT order_status, payment_status FROM coffee_orders WHERE id = $1;

-- name: close_payment
-- The unpaid payment of a cancelled order expires (only from pending); its order's payment status too.
WITH p AS (
    UPDATE crypto_payments SET status = 'expired', updated_at = now() WHERE order_id = $1 AND status = 'pending'
    RETURNING id, order_id, user_id, chain, crypto_currency, crypto_amount, amount_received, decimals, fiat_amount,
              fiat_currency, exchange_rate, wallet_address, transaction_hash, block_number, confirmations, status,
              expires_at, confirmed_at, resolution, credited, token_address, chain_id, payment_uri, rate_source
), o AS (
    UPDATE coffee_orders SET payment_status = 'expired' WHERE id = $1 AND payment_status = 'pending'
)
SELECT * FROM p;

-- name: deposits_seen
-- Whether any deposit (live or orphaned) ever reached the order's address: then it can no longer change.
SELECT EXISTS (SELECT 1 FROM deposits d JOIN crypto_payments p ON p.chain = d.chain AND p.wallet_address = d.address
               WHERE p.order_id = $1 AND p.address_released_at IS NULL)
    OR EXISTS (SELECT 1 FROM lightning_invoices l WHERE l.order_id = $1 AND l.state = 'settled');

-- name: replace_items
-- A changed order's items: the old ones deleted with their (released) reservations, the new ones written.
WITH gone AS (DELETE FROM order_items WHERE order_id = $1),
     unreserved AS (DELETE FROM order_reservations WHERE order_id = $1)
INSERT INTO order_items (order_id, product_id, product_name, base_price, final_price, quantity, customizations)
SELECT $1, * FROM unnest($2::uuid[], $3::text[], $4::numeric[], $5::numeric[], $6::int[], $7::jsonb[]);

-- name: requote_payment
-- A changed order's payment: the new amount at a fresh rate (the address stays).
UPDATE crypto_payments SET crypto_amount = $2, fiat_amount = $3, exchange_rate = $4, rate_source = $5,
       rate_as_of = $6, payment_uri = $7, updated_at = now()
WHERE order_id = $1;

-- name: payment_address
-- The address an order is paid to.
SELECT wallet_address FROM crypto_payments WHERE order_id = $1;

-- name: update_order
-- A changed unpaid order's amounts and delivery details (guarded: still pending and unpaid).
UPDATE coffee_orders SET total_amount = $2, crypto_amount = $3, order_type = $4, pickup_time = $5,
       delivery_address = $6, special_instructions = $7, version = version + 1, updated_at = now()
WHERE id = $1 AND order_status = 'pending' AND payment_status = 'pending'
RETURNING id, user_id, shop_id, total_amount, currency, crypto_amount, crypto_currency, chain, payment_status,
          order_status, order_type, pickup_time, delivery_address, special_instructions, expires_at, version,
          created_at, updated_at;
