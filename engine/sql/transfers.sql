-- name: lock_payment
-- The payment a refund is for, with its order's status and what refunds still hold of it ($2: the
-- statuses that hold); payment and order locked (FOR UPDATE), so concurrent refunds of one payment are
-- decided one after another.
SELECT p.id, p.order_id, o.shop_id, o.order_status, p.wallet_id, p.chain, p.crypto_currency, p.decimals,
       p.token_address, p.crypto_amount, p.amount_received, p.fiat_amount, p.fiat_currency, p.status,
       p.resolution, p.credited,
       coalesce((SELECT sum(r.amount) FROM transfers r WHERE r.payment_id = p.id AND r.status = ANY($2::text[])),
                0) AS held
FROM crypto_payments p JOIN coffee_orders o ON o.id = p.order_id
WHERE p.order_id = $1
FOR UPDATE OF p, o;

-- name: add_refund
-- A new refund, awaiting the customer's claim.
INSERT INTO transfers (id, kind, payment_id, order_id, shop_id, wallet_id, chain, asset, decimals, token_address,
                       variant, fiat_amount, fiat_currency, rate, fee_bps, amount, status, claim_expires_at, reason,
                       created_by)
VALUES ($1, 'refund', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, 'awaiting_claim', $16, $17, $18)
RETURNING id, kind, payment_id, order_id, shop_id, wallet_id, chain, asset, decimals, token_address, variant,
          fiat_amount, fiat_currency, rate, fee_bps, amount, status, method, destination, claim_expires_at,
          batch_id, psbt, txid, network_fee, change_index, reason, failure, created_at, claimed_at,
          approved_at, sent_at, completed_at, settled_at, updated_at, version;

-- name: add_payout
-- A new payout of a shop's custodial balance to the merchant's address, awaiting an operator's approval.
INSERT INTO transfers (id, kind, shop_id, chain, asset, decimals, token_address, amount, status, destination, reason,
                       created_by)
VALUES ($1, 'payout', $2, $3, $4, $5, $6, $7, 'awaiting_approval', $8, $9, $10)
RETURNING id, kind, payment_id, order_id, shop_id, wallet_id, chain, asset, decimals, token_address, variant,
          fiat_amount, fiat_currency, rate, fee_bps, amount, status, method, destination, claim_expires_at,
          batch_id, psbt, txid, network_fee, change_index, reason, failure, created_at, claimed_at,
          approved_at, sent_at, completed_at, settled_at, updated_at, version;

-- name: get
-- One transfer.
SELECT id, kind, payment_id, order_id, shop_id, wallet_id, chain, asset, decimals, token_address, variant,
       fiat_amount, fiat_currency, rate, fee_bps, amount, status, method, destination, claim_expires_at,
       batch_id, psbt, txid, network_fee, change_index, reason, failure, created_at, claimed_at, approved_at,
       sent_at, completed_at, settled_at, updated_at, version
FROM transfers WHERE id = $1;

-- name: lock
-- One transfer, locked (FOR UPDATE) for a change decided in Python.
SELECT id, kind, payment_id, order_id, shop_id, wallet_id, chain, asset, decimals, token_address, variant,
       fiat_amount, fiat_currency, rate, fee_bps, amount, status, method, destination, claim_expires_at,
       batch_id, psbt, txid, network_fee, change_index, reason, failure, created_at, claimed_at, approved_at,
       sent_at, completed_at, settled_at, updated_at, version
FROM transfers WHERE id = $1 FOR UPDATE;

-- name: of_shop
-- A shop's transfers of a kind, newest first, before a (created_at, id) keyset cursor.
SELECT id, kind, payment_id, order_id, shop_id, wallet_id, chain, asset, decimals, token_address, variant,
       fiat_amount, fiat_currency, rate, fee_bps, amount, status, method, destination, claim_expires_at,
       batch_id, psbt, txid, network_fee, change_index, reason, failure, created_at, claimed_at, approved_at,
       sent_at, completed_at, settled_at, updated_at, version
FROM transfers WHERE shop_id = $1 AND kind = $5 AND (created_at, id) < ($2, $3)
ORDER BY created_at DESC, id DESC LIMIT $4;

-- name: claim
-- The customer's address: awaiting approval (guarded: still awaiting the claim, link not expired).
UPDATE transfers SET destination = $2, status = 'awaiting_approval', claimed_at = now(), updated_at = now(),
       version = version + 1
WHERE id = $1 AND status = 'awaiting_claim' AND claim_expires_at > now()
RETURNING id, kind, payment_id, order_id, shop_id, wallet_id, chain, asset, decimals, token_address, variant,
          fiat_amount, fiat_currency, rate, fee_bps, amount, status, method, destination, claim_expires_at,
          batch_id, psbt, txid, network_fee, change_index, reason, failure, created_at, claimed_at,
          approved_at, sent_at, completed_at, settled_at, updated_at, version;

-- name: approve
-- The approval with the amount and rate it fixed and how it will be sent (guarded by the states it may
-- be approved from, $6).
UPDATE transfers SET status = $2, amount = $3, rate = coalesce($4, rate), method = $5, approved_by = $7,
       approved_at = now(), updated_at = now(), version = version + 1
WHERE id = $1 AND status = ANY($6::text[])
RETURNING id, kind, payment_id, order_id, shop_id, wallet_id, chain, asset, decimals, token_address, variant,
          fiat_amount, fiat_currency, rate, fee_bps, amount, status, method, destination, claim_expires_at,
          batch_id, psbt, txid, network_fee, change_index, reason, failure, created_at, claimed_at,
          approved_at, sent_at, completed_at, settled_at, updated_at, version;

-- name: move
-- A transfer's status moves to $2 from one of $3 (the transition table's sources), with an optional
-- failure note; completed_at is kept from the first completion.
UPDATE transfers SET status = $2::text, failure = $4, updated_at = now(), version = version + 1,
       completed_at = CASE WHEN $2::text = 'completed' THEN coalesce(completed_at, now()) ELSE completed_at END
WHERE id = $1 AND status = ANY($3::text[])
RETURNING id, kind, payment_id, order_id, shop_id, wallet_id, chain, asset, decimals, token_address, variant,
          fiat_amount, fiat_currency, rate, fee_bps, amount, status, method, destination, claim_expires_at,
          batch_id, psbt, txid, network_fee, change_index, reason, failure, created_at, claimed_at,
          approved_at, sent_at, completed_at, settled_at, updated_at, version;

-- name: set_psbt
-- The unsigned PSBT built for the wallet's owner to sign, the transfer's fee share, its change index and
-- batch (the rows are locked by the caller).
UPDATE transfers SET psbt = $2, network_fee = $3, change_index = $4, batch_id = $5, updated_at = now()
WHERE id = $1;

-- name: sent
-- The transfer's transaction is on the network (guarded by the states it may be sent from, $3).
UPDATE transfers SET status = 'in_flight', txid = $2, sent_at = now(), updated_at = now(), version = version + 1,
       failure = NULL
WHERE id = $1 AND status = ANY($3::text[])
RETURNING id, kind, payment_id, order_id, shop_id, wallet_id, chain, asset, decimals, token_address, variant,
          fiat_amount, fiat_currency, rate, fee_bps, amount, status, method, destination, claim_expires_at,
          batch_id, psbt, txid, network_fee, change_index, reason, failure, created_at, claimed_at,
          approved_at, sent_at, completed_at, settled_at, updated_at, version;

-- name: mark_settled
-- The ledger recorded the money leaving (once, ever: the first time the transfer completes).
UPDATE transfers SET settled_at = now() WHERE id = $1 AND settled_at IS NULL RETURNING true;

-- name: watch_destination
-- The destination is watched so the indexer sees the money arrive; an address watched already (a
-- customer's earlier refund) is left as it is.
INSERT INTO watched_addresses (chain, address, script, purpose) VALUES ($1, $2, $3, 'destination')
ON CONFLICT (chain, address) DO NOTHING;

-- name: payment_address
-- Whether an address is one beanpay handed out for payments or change (money must not go out to one).
SELECT EXISTS (SELECT 1 FROM watched_addresses WHERE chain = $1 AND address = $2 AND purpose <> 'destination');

-- name: at_destinations
-- Transfers on the network or done at these (chain, address) pairs, locked, with their transaction's
-- arrival as the indexer sees it (the deposit of the transfer's txid at its destination), in id order.
SELECT r.id, r.status, r.amount, d.status AS arrival, d.amount AS arrived
FROM transfers r JOIN unnest($1::text[], $2::text[]) AS k(chain, address)
     ON r.chain = k.chain AND r.destination = k.address
LEFT JOIN LATERAL (
    SELECT status, amount FROM deposits d
    WHERE d.chain = r.chain AND d.address = r.destination AND d.asset = r.asset AND d.txid = r.txid
    ORDER BY d.output_index LIMIT 1
) d ON true
WHERE r.status IN ('in_flight', 'completed') AND r.txid IS NOT NULL
ORDER BY r.id
FOR UPDATE OF r;

-- name: spendable
-- Confirmed outputs at a wallet's derived addresses ($2; NULL: the platform's) that neither a mined
-- input nor a transfer still holding them spends, with their derivation, largest first.
SELECT d.txid, d.output_index, d.amount, a.script, a.key_chain, a.derivation_index
FROM deposits d JOIN watched_addresses a ON a.chain = d.chain AND a.address = d.address
WHERE d.chain = $1 AND d.status = 'confirmed' AND a.derivation_index IS NOT NULL
  AND a.wallet_id IS NOT DISTINCT FROM $2::uuid
  AND NOT EXISTS (SELECT 1 FROM output_spends s WHERE s.chain = d.chain AND s.txid = d.txid
                  AND s.output_index = d.output_index AND s.status <> 'orphaned')
  AND NOT EXISTS (SELECT 1 FROM transfer_inputs i JOIN transfers r ON r.id = i.transfer_id
                  WHERE i.chain = d.chain AND i.txid = d.txid AND i.output_index = d.output_index
                    AND r.status IN ('awaiting_signature', 'in_flight', 'completed'))
ORDER BY d.amount DESC, d.txid LIMIT 500;

-- name: hold_inputs
-- The outputs a transfer's PSBT spends (its earlier ones, of a PSBT built before, are replaced).
WITH gone AS (DELETE FROM transfer_inputs WHERE transfer_id = $1)
INSERT INTO transfer_inputs (transfer_id, chain, txid, output_index)
SELECT $1, $2, * FROM unnest($3::text[], $4::int[]);

-- name: sent_today
-- What a payout hot wallet ($1: its address) sent of an asset in the last day.
SELECT coalesce(sum(amount), 0) FROM transfers
WHERE method = 'hot_wallet' AND sender = $1 AND chain = $2 AND asset = $3 AND sent_at > now() - interval '1 day'
  AND status IN ('in_flight', 'completed');

-- name: due_sends
-- Transfers a hot wallet is to send, oldest first; locked, rows another engine holds skipped.
SELECT id, kind, payment_id, order_id, shop_id, wallet_id, chain, asset, decimals, token_address, variant,
       fiat_amount, fiat_currency, rate, fee_bps, amount, status, method, destination, claim_expires_at,
       batch_id, psbt, txid, network_fee, change_index, reason, failure, created_at, claimed_at, approved_at,
       sent_at, completed_at, settled_at, updated_at, version
FROM transfers WHERE status = 'sending' AND method = 'hot_wallet' AND signed_tx IS NULL
ORDER BY approved_at, id LIMIT $1
FOR UPDATE SKIP LOCKED;

-- name: set_signed
-- The hot wallet's signed transaction, recorded before it is broadcast, so a crash in between
-- re-broadcasts the same transaction (same nonce) instead of paying twice.
UPDATE transfers SET signed_tx = $2, txid = $3, sender = $4, sender_nonce = $5, updated_at = now() WHERE id = $1;

-- name: next_nonce
-- The payout hot wallet's next nonce as beanpay knows it: one past the last it signed (the node's pending
-- count is the other bound: a transaction signed but not yet broadcast is not in it).
SELECT coalesce(max(sender_nonce) + 1, 0) FROM transfers WHERE sender = $1 AND chain = $2;

-- name: lock_sender
-- One signer per payout hot wallet at a time, across engines (held to commit).
SELECT pg_advisory_xact_lock(hashtext('beanpay.payout'), hashtext($1));

-- name: signed_unsent
-- Transfers a hot wallet signed but that are not yet recorded as sent (a crash or a failed broadcast in
-- between): the same transaction is broadcast again.
SELECT id, signed_tx FROM transfers WHERE status = 'sending' AND signed_tx IS NOT NULL ORDER BY sender_nonce
LIMIT $1;

-- name: shop_of_order
-- The shop an order belongs to (access is checked before anything is locked).
SELECT shop_id FROM coffee_orders WHERE id = $1;

-- name: shop_of_transfer
-- The shop a transfer belongs to, and its kind.
SELECT shop_id, kind FROM transfers WHERE id = $1;

-- name: payment_asset
-- An order's payment asset and fiat currency (for a rate).
SELECT chain, crypto_currency, fiat_currency FROM crypto_payments WHERE order_id = $1;

-- name: unseen_in_flight
-- Transfers on the network for longer than $1 whose transaction the indexer has not seen arrive (or saw
-- only orphaned): the node is asked whether it still knows them. Locked; rows others hold skipped.
SELECT id, chain, txid FROM transfers r
WHERE r.status = 'in_flight' AND r.sent_at < now() - $1::interval
  AND NOT EXISTS (SELECT 1 FROM deposits d WHERE d.chain = r.chain AND d.address = r.destination
                  AND d.txid = r.txid AND d.status <> 'orphaned')
ORDER BY r.sent_at LIMIT $2 FOR UPDATE SKIP LOCKED;

-- name: resend
-- A failed transfer goes back to be sent again ($2: awaiting_signature or sending), its old transaction
-- forgotten (guarded: still failed).
UPDATE transfers SET status = $2, psbt = NULL, txid = NULL, signed_tx = NULL, sender = NULL, sender_nonce = NULL,
       network_fee = NULL, change_index = NULL, batch_id = NULL, updated_at = now(), version = version + 1
WHERE id = $1 AND status = 'failed'
RETURNING id, kind, payment_id, order_id, shop_id, wallet_id, chain, asset, decimals, token_address, variant,
          fiat_amount, fiat_currency, rate, fee_bps, amount, status, method, destination, claim_expires_at,
          batch_id, psbt, txid, network_fee, change_index, reason, failure, created_at, claimed_at,
          approved_at, sent_at, completed_at, settled_at, updated_at, version;

-- name: lock_shop_payouts
-- A shop's payouts are decided one at a time: its row locked (FOR UPDATE); returns what its requested,
-- not yet approved payouts of an asset ($2, $3) hold (approved ones are debited from the balance already).
SELECT (SELECT id FROM coffee_shops WHERE id = $1 FOR UPDATE) AS shop_id,
       coalesce((SELECT sum(amount) FROM transfers WHERE shop_id = $1 AND kind = 'payout' AND chain = $2
                 AND asset = $3 AND status = 'awaiting_approval'), 0) AS held;

-- name: batchable
-- Approved Bitcoin payouts waiting for a PSBT, oldest first; locked, rows another batch takes skipped.
SELECT id, kind, payment_id, order_id, shop_id, wallet_id, chain, asset, decimals, token_address, variant,
       fiat_amount, fiat_currency, rate, fee_bps, amount, status, method, destination, claim_expires_at,
       batch_id, psbt, txid, network_fee, change_index, reason, failure, created_at, claimed_at, approved_at,
       sent_at, completed_at, settled_at, updated_at, version
FROM transfers WHERE kind = 'payout' AND chain = $1 AND status = 'awaiting_signature' AND psbt IS NULL
ORDER BY approved_at, id LIMIT $2 FOR UPDATE SKIP LOCKED;

-- name: of_batch
-- The transfers of one batch (one transaction), locked.
SELECT id, kind, payment_id, order_id, shop_id, wallet_id, chain, asset, decimals, token_address, variant,
       fiat_amount, fiat_currency, rate, fee_bps, amount, status, method, destination, claim_expires_at,
       batch_id, psbt, txid, network_fee, change_index, reason, failure, created_at, claimed_at, approved_at,
       sent_at, completed_at, settled_at, updated_at, version
FROM transfers WHERE batch_id = $1 ORDER BY id FOR UPDATE;

-- name: awaiting_approval
-- Payouts waiting for an operator, oldest first.
SELECT id, kind, payment_id, order_id, shop_id, wallet_id, chain, asset, decimals, token_address, variant,
       fiat_amount, fiat_currency, rate, fee_bps, amount, status, method, destination, claim_expires_at,
       batch_id, psbt, txid, network_fee, change_index, reason, failure, created_at, claimed_at, approved_at,
       sent_at, completed_at, settled_at, updated_at, version
FROM transfers WHERE kind = 'payout' AND status = 'awaiting_approval' ORDER BY created_at, id LIMIT $1;
