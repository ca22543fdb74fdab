-- name: shop_node
-- A shop's own node, if it connected one.
SELECT id, shop_id, rest_url, tls_cert, macaroon_sealed, pubkey, alias, settle_index, health, health_reason,
       inbound_msat, checked_at
FROM lightning_nodes WHERE shop_id = $1;

-- name: platform_node
-- The platform's node row (its credentials are in the environment; the row keeps its checkpoint and
-- health), as the lightning service last registered it.
SELECT id, shop_id, rest_url, tls_cert, macaroon_sealed, pubkey, alias, settle_index, health, health_reason,
       inbound_msat, checked_at
FROM lightning_nodes WHERE shop_id IS NULL ORDER BY updated_at DESC LIMIT 1;

-- name: register_platform_node
-- The platform's node as configured, by its identity; a new URL or certificate replaces the old.
INSERT INTO lightning_nodes (id, shop_id, rest_url, tls_cert, macaroon_sealed, pubkey, alias)
VALUES ($1, NULL, $2, $3, NULL, $4, $5)
ON CONFLICT (pubkey) WHERE shop_id IS NULL DO UPDATE
    SET rest_url = EXCLUDED.rest_url, tls_cert = EXCLUDED.tls_cert, alias = EXCLUDED.alias, updated_at = now()
RETURNING id, shop_id, rest_url, tls_cert, macaroon_sealed, pubkey, alias, settle_index, health, health_reason,
          inbound_msat, checked_at;

-- name: put_shop_node
-- Connects a shop's own node, or replaces it; the checkpoint restarts only for another node identity.
INSERT INTO lightning_nodes (id, shop_id, rest_url, tls_cert, macaroon_sealed, pubkey, alias, health, checked_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, 'ready', now())
ON CONFLICT (shop_id) DO UPDATE
    SET rest_url = EXCLUDED.rest_url, tls_cert = EXCLUDED.tls_cert, macaroon_sealed = EXCLUDED.macaroon_sealed,
        settle_index = CASE WHEN lightning_nodes.pubkey = EXCLUDED.pubkey THEN lightning_nodes.settle_index ELSE 0 END,
        pubkey = EXCLUDED.pubkey, alias = EXCLUDED.alias, health = 'ready', health_reason = NULL,
        checked_at = now(), updated_at = now()
RETURNING id, shop_id, rest_url, tls_cert, macaroon_sealed, pubkey, alias, settle_index, health, health_reason,
          inbound_msat, checked_at;

-- name: open_invoices_on_shop_node
-- How many invoices are still open on a shop's node (it cannot be replaced by another node meanwhile).
SELECT count(*) FROM lightning_invoices l JOIN lightning_nodes n ON n.id = l.node_id
WHERE n.shop_id = $1 AND l.state = 'open' AND n.pubkey <> $2;

-- name: watched_nodes
-- Every node whose invoices are watched: shops' own, and the platform's.
SELECT id, shop_id, rest_url, tls_cert, macaroon_sealed, pubkey, alias, settle_index, health, health_reason,
       inbound_msat, checked_at
FROM lightning_nodes ORDER BY created_at;

-- name: set_health
-- What the last look at a node found: reachable and synced, and how much it can receive.
UPDATE lightning_nodes SET health = $2, health_reason = $3, inbound_msat = $4, checked_at = now()
WHERE id = $1;

-- name: payment_to_invoice
-- An order's payment as an invoice for it needs it, with the shop's name for the description.
SELECT p.id AS payment_id, p.order_id, p.status, p.chain, p.crypto_currency, p.crypto_amount, p.wallet_address,
       p.expires_at, p.payment_uri, o.shop_id, o.user_id, o.total_amount, o.currency, s.name AS shop_name
FROM crypto_payments p JOIN coffee_orders o ON o.id = p.order_id JOIN coffee_shops s ON s.id = o.shop_id
WHERE p.order_id = $1;

-- name: open_invoice
-- The payment's open invoice, if one was issued.
SELECT payment_hash, node_id, payment_id, order_id, bolt11, description, amount_msat, expires_at, state,
       amt_paid_msat, settled_at
FROM lightning_invoices WHERE payment_id = $1 AND state = 'open';

-- name: add_invoice
-- Records an invoice the node ($2, whose identity was $8) issued, only while its payment is still unpaid and it has no open one
-- (guarded; a concurrent issue that won leaves nothing written, and the caller cancels its own).
INSERT INTO lightning_invoices (payment_hash, node_id, payment_id, order_id, bolt11, description, amount_msat,
                                expires_at, node_pubkey)
SELECT $1, $2, p.id, p.order_id, $4, $5, $6, $7, $8 FROM crypto_payments p
WHERE p.id = $3 AND p.status = 'pending' AND p.crypto_amount * 1000 = $6
ON CONFLICT (payment_id) WHERE state = 'open' DO NOTHING
RETURNING payment_hash, node_id, payment_id, order_id, bolt11, description, amount_msat, expires_at, state,
          amt_paid_msat, settled_at;

-- name: settle_invoice
-- An invoice a node ($2, identity $6) reports settled, once (guarded: not yet settled), and only if that node
-- issued it (the same row and identity: a shop that connects another node under its row gets no say over
-- the first node's invoices):
-- a node is believed about its own invoices only, for what it says was paid. One settled once it should no
-- longer have been paid (cancelled, or past its time) is a late payment. Returns its payment's address,
-- which settlement then re-assesses, and the state it was in.
WITH before AS (SELECT payment_hash, state FROM lightning_invoices
                WHERE payment_hash = $1 AND node_id = $2 AND coalesce(node_pubkey, $6) = $6 FOR UPDATE)
UPDATE lightning_invoices l SET state = 'settled', amt_paid_msat = $3, settle_index = $4, settled_at = $5,
       late = b.state = 'cancelled' OR $5 > l.expires_at
FROM before b, crypto_payments p
WHERE l.payment_hash = b.payment_hash AND b.state <> 'settled' AND p.id = l.payment_id
RETURNING l.payment_id, l.order_id, p.chain, p.wallet_address, b.state AS was, l.late;

-- name: advance_checkpoint
-- The node's settlement stream resumes after this settle index (it only moves forward).
UPDATE lightning_nodes SET settle_index = greatest(settle_index, $2), updated_at = now() WHERE id = $1;

-- name: stale_invoices
-- Open invoices that must not be paid any more: past their expiry, or their payment no longer waits
-- for them (paid on chain, expired, cancelled, or its amount changed with the order).
SELECT l.payment_hash, l.node_id
FROM lightning_invoices l JOIN crypto_payments p ON p.id = l.payment_id
WHERE l.state = 'open' AND (l.expires_at <= now() OR p.status <> 'pending' OR p.crypto_amount * 1000 <> l.amount_msat)
ORDER BY l.expires_at LIMIT $1;

-- name: mark_cancelled
-- An invoice the node cancelled (guarded: still open).
UPDATE lightning_invoices SET state = 'cancelled', cancelled_at = now() WHERE payment_hash = $1 AND state = 'open';

-- name: claim_with_invoice
-- The customer's BOLT11 invoice for a refund: awaiting approval (guarded: still awaiting the claim, link
-- not expired). The destination names the invoice's payment hash.
UPDATE transfers SET destination = $2, lightning_invoice = $3, status = 'awaiting_approval', claimed_at = now(),
       updated_at = now(), version = version + 1
WHERE id = $1 AND status = 'awaiting_claim' AND claim_expires_at > now()
RETURNING id, kind, payment_id, order_id, shop_id, wallet_id, chain, asset, decimals, token_address, variant,
          fiat_amount, fiat_currency, rate, fee_bps, amount, status, method, destination, claim_expires_at,
          batch_id, psbt, txid, network_fee, change_index, reason, failure, created_at, claimed_at,
          approved_at, sent_at, completed_at, settled_at, updated_at, version, custodial, node_id, node_pubkey;

-- name: invoice_claimed
-- Whether a Lightning invoice (its destination, by payment hash) already claims a refund not cancelled.
SELECT EXISTS (SELECT 1 FROM transfers WHERE destination = $1 AND status <> 'cancelled');

-- name: due_lightning_refunds
-- Approved refunds to pay over Lightning, oldest first.
SELECT id FROM transfers WHERE status = 'sending' AND method = 'lightning' ORDER BY approved_at, id LIMIT $1;

-- name: lightning_refund
-- A refund to pay over Lightning, locked, with its invoice (rows another process holds skipped).
SELECT t.id, t.shop_id, t.amount, t.status, t.lightning_invoice, t.sender, t.txid
FROM transfers t WHERE t.id = $1 AND t.status = 'sending' AND t.method = 'lightning'
FOR UPDATE SKIP LOCKED;

-- name: lock_pay_limit
-- One payer per node at a time decides against its daily limit (every engine and lightning process).
SELECT pg_advisory_xact_lock(hashtext('beanpay.lightning-pay'), hashtext($1));

-- name: paid_today
-- What a node (its row id, as the refund's sender) paid out over Lightning in the last day, in msat;
-- an attempt in progress counts.
SELECT coalesce(sum(amount), 0) * 1000 FROM transfers
WHERE method = 'lightning' AND sender = $1 AND sent_at > now() - interval '1 day'
  AND status IN ('sending', 'in_flight', 'completed');

-- name: mark_attempt
-- A payment attempt starts: which node pays, when (now: a refund sent again after it failed counts against
-- today's limit, not the day of its first attempt), and the payment hash (lnd pays one hash once, so a
-- retry after a crash cannot pay twice).
UPDATE transfers SET sender = $2, sent_at = now(), txid = $3, updated_at = now()
WHERE id = $1 AND status = 'sending' AND method = 'lightning';

-- name: set_pay_macaroon
-- The shop's macaroon that may pay refunds, sealed, and its daily limit (NULL, NULL: none).
UPDATE lightning_nodes SET pay_macaroon_sealed = $2, pay_daily_limit_msat = $3, updated_at = now()
WHERE shop_id = $1;

-- name: pay_node
-- The shop's own node's payment capability (what refunds over Lightning are paid with).
SELECT id, pay_macaroon_sealed, pay_daily_limit_msat FROM lightning_nodes WHERE id = $1;

-- name: open_on_node
-- The payment hashes of beanpay's invoices still open on a node (asked of the node when its stream
-- reconnects).
SELECT payment_hash FROM lightning_invoices WHERE node_id = $1 AND state = 'open';

-- name: is_open_here
-- Whether a payment hash is one of beanpay's invoices that this node ($2, identity $3) issued, not yet settled (the
-- node's other invoices, and whatever it says of others', are skipped without a write).
SELECT EXISTS (SELECT 1 FROM lightning_invoices
               WHERE payment_hash = $1 AND node_id = $2 AND coalesce(node_pubkey, $3) = $3 AND state <> 'settled');
