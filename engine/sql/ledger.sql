-- name: post
-- Appends entry pairs (debit deposits:<chain>:<asset>, credit merchant:<shop>), each with who holds the
-- money; the table refuses updates and deletes, and triggers check that every entry group balances and
-- that no refund or payout overdraws a custodial balance.
INSERT INTO ledger_entries (entry_group, account, shop_id, chain, asset, amount, kind, payment_id, memo, custodial)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::text[], $6::numeric[],
                     $7::text[], $8::uuid[], $9::text[], $10::bool[]);

-- name: post_transfer
-- A refund's or payout's entry pair of one kind (approved: the shop's balance to what is owed; sent: what
-- is owed to the deposits it spent; fee; cancelled: back to the shop). A unique index refuses a kind twice.
INSERT INTO ledger_entries (entry_group, account, shop_id, chain, asset, amount, kind, payment_id, memo,
                            transfer_id, custodial)
SELECT $1, a.account, $3, $4, $5, a.amount, $6, $7, $8, $9, $11
FROM unnest($2::text[], $10::numeric[]) AS a(account, amount);

-- name: balances
-- The shop's balance per chain and asset (the merchant account is a credit, so negated), apart for
-- money the platform holds (custodial: paid into its wallet or node) and money in the shop's own.
SELECT chain, asset, custodial, -sum(amount) AS balance FROM ledger_custody WHERE account = $1
GROUP BY chain, asset, custodial ORDER BY chain, asset, custodial;

-- name: lock_custody
-- A shop's custodial money is debited (refunds and payouts approved) one decision at a time: held to commit,
-- the same lock the database's overdraft check takes.
SELECT pg_advisory_xact_lock(hashtext('beanpay.custody'), hashtext($1::text));

-- name: custodial_balance
-- What the platform holds for a shop of one asset now (negative: a debt a reorg or a fee left).
SELECT -coalesce(sum(amount), 0) FROM ledger_custody WHERE account = $1 AND chain = $2 AND asset = $3 AND custodial;

-- name: unfinal_custodial
-- What a shop was credited of the platform's money for payments a reorg could still take back (counted at an
-- invoice's faster speed, before the chain's full depth): not yet to be paid out. Starts from the deposits not
-- yet final, which are few at any time.
SELECT coalesce(sum(p.credited), 0) FROM crypto_payments p JOIN coffee_orders o ON o.id = p.order_id
WHERE o.shop_id = $1 AND p.chain = $2 AND p.crypto_currency = $3 AND p.wallet_id IS NULL AND p.credited > 0
  AND p.address_released_at IS NULL
  AND (p.chain, p.wallet_address) IN (SELECT d.chain, d.address FROM deposits d
                                       WHERE d.chain = $2 AND d.asset = $3 AND d.status IN ('seen', 'confirming'));

-- name: debts
-- Shops whose custodial balance the chain took below zero (only reversals and fees can), per asset.
SELECT l.chain, l.asset, count(*) AS shops, sum(l.owed) AS owed FROM (
    SELECT chain, asset, sum(amount) AS owed FROM ledger_custody  -- the merchant account: a debt sums above zero
    WHERE custodial AND shop_id IN (SELECT shop_id FROM ledger_entries
                                    WHERE kind IN ('reversal', 'refund_fee', 'payout_fee'))
      AND account LIKE 'merchant:%'
    GROUP BY shop_id, chain, asset HAVING sum(amount) > 0
) l GROUP BY l.chain, l.asset;

-- name: history
-- The shop's ledger entries, newest first, before an entry id (keyset page).
SELECT id, entry_group, chain, asset, -amount AS amount, kind, payment_id, memo, created_at, custodial, transfer_id
FROM ledger_custody WHERE account = $1 AND id < $2 ORDER BY id DESC LIMIT $3;
