-- name: lock_payment
-- The payment a refund is for, with its order's status; payment and order locked (FOR UPDATE), so
-- concurrent refunds of one payment are decided one after another (what they hold: refund_holdings).
SELECT p.id, p.order_id, o.shop_id, o.order_status, p.wallet_id, p.chain, p.crypto_currency, p.decimals,
       p.token_address, p.crypto_amount, p.amount_received, p.fiat_amount, p.fiat_currency, p.status,
       p.resolution, p.credited
FROM crypto_payments p JOIN coffee_orders o ON o.id = p.order_id
WHERE p.order_id = $1
FOR UPDATE OF p, o;

-- name: refund_holdings
-- What refunds still hold of a payment ($1; $2: the statuses that hold), apart for the platform's money
-- and the shop's; how much of what the shop was credited for it the platform holds; and the shop's own
-- Lightning node that received part of it, if one did, and whether that node (still the same identity)
-- may pay. A statement of its own, run once the payment is locked, so it sees what a refund decided
-- meanwhile committed.
SELECT coalesce((SELECT sum(r.amount) FROM transfers r WHERE r.payment_id = p.id AND r.status = ANY($2::text[])),
                0) AS held,
       (SELECT -coalesce(sum(l.amount), 0) FROM ledger_entries l
        WHERE l.payment_id = p.id AND l.account LIKE 'merchant:%' AND l.kind IN ('payment', 'reversal')
          AND coalesce(l.custodial, p.wallet_id IS NULL)) AS credited_custodial,
       coalesce((SELECT sum(r.amount) FROM transfers r WHERE r.payment_id = p.id AND r.status = ANY($2::text[])
                   AND coalesce(r.custodial, r.wallet_id IS NULL)), 0) AS held_custodial,
       own.node_id AS own_node_id, own.node_pubkey AS own_node_pubkey, coalesce(own.pays, false) AS own_node_pays
FROM crypto_payments p
LEFT JOIN LATERAL (
    SELECT l.node_id, coalesce(l.node_pubkey, n.pubkey) AS node_pubkey,
           n.pay_macaroon_sealed IS NOT NULL AND n.pay_daily_limit_msat > 0
           AND n.pubkey = coalesce(l.node_pubkey, n.pubkey) AS pays
    FROM lightning_invoices l JOIN lightning_nodes n ON n.id = l.node_id
    WHERE l.payment_id = p.id AND l.state = 'settled' AND n.shop_id IS NOT NULL
    ORDER BY l.settled_at LIMIT 1
) own ON true
WHERE p.id = $1;

-- name: add_refund
-- A new refund, awaiting the customer's claim, from the custody that received its payment ($19: the
-- platform's; else the shop's own wallet $5, or its own node $20 with the identity $21 it had).
INSERT INTO transfers (id, kind, payment_id, order_id, shop_id, wallet_id, chain, asset, decimals, token_address,
                       variant, fiat_amount, fiat_currency, rate, fee_bps, amount, status, claim_expires_at, reason,
                       created_by, custodial, node_id, node_pubkey)
VALUES ($1, 'refund', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, 'awaiting_claim', $16, $17, $18,
        $19, $20, $21)
RETURNING id, kind, payment_id, order_id, shop_id, wallet_id, chain, asset, decimals, token_address, variant,
          fiat_amount, fiat_currency, rate, fee_bps, amount, status, method, destination, claim_expires_at,
          batch_id, psbt, txid, network_fee, change_index, reason, failure, created_at, claimed_at,
          approved_at, sent_at, completed_at, settled_at, updated_at, version, custodial, node_id, node_pubkey;

-- name: add_payout
-- A new payout of a shop's custodial balance to the merchant's address, awaiting an operator's approval.
INSERT INTO transfers (id, kind, shop_id, chain, asset, decimals, token_address, amount, status, destination, reason,
                       created_by, custodial)
VALUES ($1, 'payout', $2, $3, $4, $5, $6, $7, 'awaiting_approval', $8, $9, $10, true)
RETURNING id, kind, payment_id, order_id, shop_id, wallet_id, chain, asset, decimals, token_address, variant,
          fiat_amount, fiat_currency, rate, fee_bps, amount, status, method, destination, claim_expires_at,
          batch_id, psbt, txid, network_fee, change_index, reason, failure, created_at, claimed_at,
          approved_at, sent_at, completed_at, settled_at, updated_at, version, custodial, node_id, node_pubkey;

-- name: get
-- One transfer.
SELECT id, kind, payment_id, order_id, shop_id, wallet_id, chain, asset, decimals, token_address, variant,
       fiat_amount, fiat_currency, rate, fee_bps, amount, status, method, destination, claim_expires_at,
       batch_id, psbt, txid, network_fee, change_index, reason, failure, created_at, claimed_at, approved_at,
       sent_at, completed_at, settled_at, updated_at, version, custodial, node_id, node_pubkey
FROM transfers WHERE id = $1;

-- name: lock
-- One transfer, locked (FOR UPDATE) for a change decided in Python.
SELECT id, kind, payment_id, order_id, shop_id, wallet_id, chain, asset, decimals, token_address, variant,
       fiat_amount, fiat_currency, rate, fee_bps, amount, status, method, destination, claim_expires_at,
       batch_id, psbt, txid, network_fee, change_index, reason, failure, created_at, claimed_at, approved_at,
       sent_at, completed_at, settled_at, updated_at, version, custodial, node_id, node_pubkey
FROM transfers WHERE id = $1 FOR UPDATE;

-- name: of_shop
-- A shop's transfers of a kind, newest first, before a (created_at, id) keyset cursor.
SELECT id, kind, payment_id, order_id, shop_id, wallet_id, chain, asset, decimals, token_address, variant,
       fiat_amount, fiat_currency, rate, fee_bps, amount, status, method, destination, claim_expires_at,
       batch_id, psbt, txid, network_fee, change_index, reason, failure, created_at, claimed_at, approved_at,
       sent_at, completed_at, settled_at, updated_at, version, custodial, node_id, node_pubkey
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
          approved_at, sent_at, completed_at, settled_at, updated_at, version, custodial, node_id, node_pubkey;

-- name: approve
-- The approval with the amount and rate it fixed and how it will be sent (guarded by the states it may
-- be approved from, $6).
UPDATE transfers SET status = $2, amount = $3, rate = coalesce($4, rate), method = $5, approved_by = $7,
       approved_at = now(), updated_at = now(), version = version + 1
WHERE id = $1 AND status = ANY($6::text[])
RETURNING id, kind, payment_id, order_id, shop_id, wallet_id, chain, asset, decimals, token_address, variant,
          fiat_amount, fiat_currency, rate, fee_bps, amount, status, method, destination, claim_expires_at,
          batch_id, psbt, txid, network_fee, change_index, reason, failure, created_at, claimed_at,
          approved_at, sent_at, completed_at, settled_at, updated_at, version, custodial, node_id, node_pubkey;

-- name: move
-- A transfer's status moves to $2 from one of $3 (the transition table's sources), with an optional
-- failure note; completed_at is kept from the first completion.
UPDATE transfers SET status = $2::text, failure = $4, updated_at = now(), version = version + 1,
       completed_at = CASE WHEN $2::text = 'completed' THEN coalesce(completed_at, now()) ELSE completed_at END
WHERE id = $1 AND status = ANY($3::text[])
RETURNING id, kind, payment_id, order_id, shop_id, wallet_id, chain, asset, decimals, token_address, variant,
          fiat_amount, fiat_currency, rate, fee_bps, amount, status, method, destination, claim_expires_at,
          batch_id, psbt, txid, network_fee, change_index, reason, failure, created_at, claimed_at,
          approved_at, sent_at, completed_at, settled_at, updated_at, version, custodial, node_id, node_pubkey;

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
          approved_at, sent_at, completed_at, settled_at, updated_at, version, custodial, node_id, node_pubkey;

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
-- Transfers at these (chain, address) pairs that a transaction may pay: on the network or done, and
-- those failed or being sent again whose earlier transaction may still be mined; locked, with the arrival
-- as the indexer sees it of the transfer's transaction or of one it replaced (a confirmed one first, the
-- current one before an earlier), in id order.
SELECT r.id, r.status, r.amount, r.txid, d.txid AS arrived_txid, d.status AS arrival, d.amount AS arrived
FROM transfers r JOIN unnest($1::text[], $2::text[]) AS k(chain, address)
     ON r.chain = k.chain AND r.destination = k.address
LEFT JOIN LATERAL (
    SELECT d.txid, d.status, d.amount FROM deposits d
    WHERE d.chain = r.chain AND d.address = r.destination AND d.asset = r.asset
      AND (d.txid = r.txid OR d.txid IN (SELECT a.txid FROM transfer_attempts a WHERE a.transfer_id = r.id))
    ORDER BY d.status = 'confirmed' DESC, d.txid IS NOT DISTINCT FROM r.txid DESC, d.output_index LIMIT 1
) d ON true
WHERE r.status IN ('in_flight', 'completed', 'failed', 'awaiting_signature', 'sending')
  AND r.method IS DISTINCT FROM 'lightning'
  AND (r.txid IS NOT NULL OR EXISTS (SELECT 1 FROM transfer_attempts a WHERE a.transfer_id = r.id))
ORDER BY r.id
FOR UPDATE OF r;

-- name: spendable
-- Confirmed outputs at a wallet's derived addresses ($2; NULL: the platform's) that neither a mined
-- input nor a transfer still holding them spends (a failed one's too: its transaction may be broadcast
-- again, and its retry spends them again), with their derivation, largest first.
SELECT d.txid, d.output_index, d.amount, a.script, a.key_chain, a.derivation_index
FROM deposits d JOIN watched_addresses a ON a.chain = d.chain AND a.address = d.address
WHERE d.chain = $1 AND d.status = 'confirmed' AND a.derivation_index IS NOT NULL
  AND a.wallet_id IS NOT DISTINCT FROM $2::uuid
  AND NOT EXISTS (SELECT 1 FROM output_spends s WHERE s.chain = d.chain AND s.txid = d.txid
                  AND s.output_index = d.output_index AND s.status <> 'orphaned')
  AND NOT EXISTS (SELECT 1 FROM transfer_inputs i JOIN transfers r ON r.id = i.transfer_id
                  WHERE i.chain = d.chain AND i.txid = d.txid AND i.output_index = d.output_index
                    AND r.status IN ('awaiting_signature', 'in_flight', 'completed', 'failed'))
ORDER BY d.amount DESC, d.txid LIMIT 500;

-- name: outputs_of
-- These outputs ($3, $4) of a wallet ($2; NULL: the platform's), confirmed, with their derivation: the
-- inputs of a transaction a retry must spend again (they are held by the transfer itself).
SELECT d.txid, d.output_index, d.amount, a.script, a.key_chain, a.derivation_index
FROM unnest($3::text[], $4::int[]) AS o(txid, output_index)
JOIN deposits d ON d.chain = $1 AND d.txid = o.txid AND d.output_index = o.output_index
JOIN watched_addresses a ON a.chain = d.chain AND a.address = d.address
WHERE d.status = 'confirmed' AND a.derivation_index IS NOT NULL AND a.wallet_id IS NOT DISTINCT FROM $2::uuid
ORDER BY d.amount DESC, d.txid;

-- name: hold_inputs
-- The outputs a transfer's PSBT spends (its earlier ones, of a PSBT built before, are replaced; a retry
-- spends some of them again, and those stay).
WITH gone AS (DELETE FROM transfer_inputs WHERE transfer_id = $1
              AND (txid, output_index) NOT IN (SELECT * FROM unnest($3::text[], $4::int[])))
INSERT INTO transfer_inputs (transfer_id, chain, txid, output_index)
SELECT $1, $2, * FROM unnest($3::text[], $4::int[])
ON CONFLICT (transfer_id, txid, output_index) DO NOTHING;

-- name: sent_today
-- What a payout hot wallet ($1: its address) sent of an asset in the last day, the transfer being decided
-- ($4) aside: every transaction it signed that may be mined, from when it was signed (signed in this
-- very batch and not yet broadcast, on the network, confirmed, or failed as dropped or being sent again:
-- anyone may broadcast the dropped one again). Read under the wallet's lock, so engines signing at once
-- count each other's. Once per transfer: its transactions conflict, one at most is mined.
SELECT coalesce(sum(amount), 0) FROM transfers t
WHERE method = 'hot_wallet' AND chain = $2 AND asset = $3 AND id <> $4
  AND (sender = $1 OR EXISTS (SELECT 1 FROM transfer_attempts a WHERE a.transfer_id = t.id AND a.sender = $1))
  AND coalesce(signed_at, sent_at) > now() - interval '1 day'
  AND (status IN ('in_flight', 'completed')
       OR (status IN ('sending', 'failed')
           AND (txid IS NOT NULL OR EXISTS (SELECT 1 FROM transfer_attempts a WHERE a.transfer_id = t.id))));

-- name: due_sends
-- Transfers a hot wallet is to send, oldest first; locked, rows another engine holds skipped.
SELECT id, kind, payment_id, order_id, shop_id, wallet_id, chain, asset, decimals, token_address, variant,
       fiat_amount, fiat_currency, rate, fee_bps, amount, status, method, destination, claim_expires_at,
       batch_id, psbt, txid, network_fee, change_index, reason, failure, created_at, claimed_at, approved_at,
       sent_at, completed_at, settled_at, updated_at, version, custodial, node_id, node_pubkey
FROM transfers WHERE status = 'sending' AND method = 'hot_wallet' AND signed_tx IS NULL
ORDER BY approved_at, id LIMIT $1
FOR UPDATE SKIP LOCKED;

-- name: set_signed
-- The hot wallet's signed transaction, recorded before it is broadcast, so a crash in between
-- re-broadcasts the same transaction (same nonce) instead of paying twice.
UPDATE transfers SET signed_tx = $2, txid = $3, sender = $4, sender_nonce = $5, signed_at = now(), updated_at = now()
WHERE id = $1;

-- name: next_nonce
-- The payout hot wallet's next nonce as beanpay knows it: one past the last it signed, a replaced
-- transaction's too (its retry takes that nonce again; the node's pending count is the other bound: a
-- transaction signed but not yet broadcast is not in it).
SELECT greatest((SELECT coalesce(max(sender_nonce) + 1, 0) FROM transfers WHERE sender = $1 AND chain = $2),
                (SELECT coalesce(max(sender_nonce) + 1, 0) FROM transfer_attempts WHERE sender = $1 AND chain = $2));

-- name: lock_sender
-- One signer per payout hot wallet at a time, across engines (held to commit).
SELECT pg_advisory_xact_lock(hashtext('beanpay.payout'), hashtext($1));

-- name: ungassed
-- ETH transfers a hot wallet sent in the last day whose gas is not yet their network fee, newest first
-- (a token transfer's gas is ETH, another asset than it sends: the platform's cost).
SELECT id, chain, txid FROM transfers
WHERE method = 'hot_wallet' AND token_address IS NULL AND network_fee IS NULL AND txid IS NOT NULL
  AND status IN ('in_flight', 'completed') AND sent_at > now() - interval '1 day'
ORDER BY sent_at DESC LIMIT $1;

-- name: set_gas
-- The gas the hot wallet paid for the transfer's transaction ($2) is its network fee ($3), once; with
-- settled_at, whether the ledger recorded the transfer leaving already (the fee is then posted apart).
UPDATE transfers SET network_fee = $3, updated_at = now()
WHERE id = $1 AND txid = $2 AND network_fee IS NULL
RETURNING id, kind, payment_id, order_id, shop_id, wallet_id, chain, asset, decimals, token_address, variant,
          fiat_amount, fiat_currency, rate, fee_bps, amount, status, method, destination, claim_expires_at,
          batch_id, psbt, txid, network_fee, change_index, reason, failure, created_at, claimed_at,
          approved_at, sent_at, completed_at, settled_at, updated_at, version, custodial, node_id, node_pubkey;

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
SELECT id, chain, txid, psbt FROM transfers r
WHERE r.status = 'in_flight' AND r.sent_at < now() - $1::interval
  AND NOT EXISTS (SELECT 1 FROM deposits d WHERE d.chain = r.chain AND d.address = r.destination
                  AND d.txid = r.txid AND d.status IN ('seen', 'confirming', 'confirmed'))
ORDER BY r.sent_at LIMIT $2 FOR UPDATE SKIP LOCKED;

-- name: spenders_of
-- The mined transactions the indexer saw spend these outputs ($2, $3) of a chain, with the block it saw
-- each in (the node is asked whether its chain still holds that block).
SELECT s.txid, s.output_index, s.spending_txid, s.block_hash, s.block_height
FROM output_spends s JOIN unnest($2::text[], $3::int[]) AS o(txid, output_index)
     ON s.txid = o.txid AND s.output_index = o.output_index
WHERE s.chain = $1 AND s.status <> 'orphaned';

-- name: keep_attempt
-- A failed transfer's transaction, kept as it is sent again: anyone may still broadcast it, so its retry
-- conflicts with it and tracking follows both until one is mined.
INSERT INTO transfer_attempts (transfer_id, chain, txid, batch_id, psbt, signed_tx, sender, sender_nonce, network_fee)
SELECT id, chain, txid, batch_id, psbt, signed_tx, sender, sender_nonce, network_fee FROM transfers
WHERE id = $1 AND txid IS NOT NULL
ON CONFLICT (transfer_id, txid) DO NOTHING;

-- name: attempts_of
-- The transactions a transfer was sent with before, newest first.
SELECT txid, batch_id, psbt, signed_tx, sender, sender_nonce, network_fee FROM transfer_attempts
WHERE transfer_id = $1 ORDER BY replaced_at DESC, txid;

-- name: revive_attempt
-- An earlier transaction of the transfer ($2) was mined after all: it is the transfer's again, with what
-- it paid (its PSBT, batch and fee share; its sender and nonce); the retry it conflicts with never will be.
UPDATE transfers r SET txid = a.txid, batch_id = a.batch_id, psbt = a.psbt, signed_tx = a.signed_tx,
       sender = a.sender, sender_nonce = a.sender_nonce, network_fee = a.network_fee, updated_at = now()
FROM transfer_attempts a
WHERE r.id = $1 AND a.transfer_id = r.id AND a.txid = $2
RETURNING r.id;

-- name: txid_taken
-- Another transfer ($1 aside) that this transaction already pays, now or as one it replaced.
SELECT id FROM transfers WHERE chain = $2 AND lower(txid) = lower($3) AND id <> $1
UNION ALL
SELECT transfer_id FROM transfer_attempts WHERE chain = $2 AND lower(txid) = lower($3) AND transfer_id <> $1
LIMIT 1;

-- name: transactions_of
-- Every transaction a transfer was sent with: its own and those it replaced.
SELECT txid, psbt, sender, sender_nonce FROM transfers WHERE id = $1 AND txid IS NOT NULL
UNION ALL
SELECT txid, psbt, sender, sender_nonce FROM transfer_attempts WHERE transfer_id = $1;

-- name: set_sender
-- Who sent a transfer's transaction from a wallet of their own, and its nonce (a retry must take it again).
UPDATE transfers SET sender = $2, sender_nonce = $3 WHERE id = $1;

-- name: resend
-- A failed transfer goes back to be sent again ($2: awaiting_signature or sending), its old transaction
-- kept apart first (keep_attempt: the retry must conflict with it) (guarded: still failed).
UPDATE transfers SET status = $2, psbt = NULL, txid = NULL, signed_tx = NULL, sender = NULL, sender_nonce = NULL,
       network_fee = NULL, change_index = NULL, batch_id = NULL, updated_at = now(), version = version + 1
WHERE id = $1 AND status = 'failed'
RETURNING id, kind, payment_id, order_id, shop_id, wallet_id, chain, asset, decimals, token_address, variant,
          fiat_amount, fiat_currency, rate, fee_bps, amount, status, method, destination, claim_expires_at,
          batch_id, psbt, txid, network_fee, change_index, reason, failure, created_at, claimed_at,
          approved_at, sent_at, completed_at, settled_at, updated_at, version, custodial, node_id, node_pubkey;

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
       sent_at, completed_at, settled_at, updated_at, version, custodial, node_id, node_pubkey
FROM transfers WHERE kind = 'payout' AND chain = $1 AND status = 'awaiting_signature' AND psbt IS NULL
ORDER BY approved_at, id LIMIT $2 FOR UPDATE SKIP LOCKED;

-- name: of_batch
-- The transfers of one batch (one transaction), locked.
SELECT id, kind, payment_id, order_id, shop_id, wallet_id, chain, asset, decimals, token_address, variant,
       fiat_amount, fiat_currency, rate, fee_bps, amount, status, method, destination, claim_expires_at,
       batch_id, psbt, txid, network_fee, change_index, reason, failure, created_at, claimed_at, approved_at,
       sent_at, completed_at, settled_at, updated_at, version, custodial, node_id, node_pubkey
FROM transfers WHERE batch_id = $1 ORDER BY id FOR UPDATE;

-- name: awaiting_approval
-- Payouts waiting for an operator, oldest first.
SELECT id, kind, payment_id, order_id, shop_id, wallet_id, chain, asset, decimals, token_address, variant,
       fiat_amount, fiat_currency, rate, fee_bps, amount, status, method, destination, claim_expires_at,
       batch_id, psbt, txid, network_fee, change_index, reason, failure, created_at, claimed_at, approved_at,
       sent_at, completed_at, settled_at, updated_at, version, custodial, node_id, node_pubkey
FROM transfers WHERE kind = 'payout' AND status = 'awaiting_approval' ORDER BY created_at, id LIMIT $1;
