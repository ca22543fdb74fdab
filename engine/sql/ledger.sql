-- name: post
-- Appends entry pairs (debit deposits:<chain>:<asset>, credit merchant:<shop>); the table refuses
-- updates and deletes, and a deferred trigger checks at commit that every entry group balances.
INSERT INTO ledger_entries (entry_group, account, shop_id, chain, asset, amount, kind, payment_id, memo)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::text[], $6::numeric[],
                     $7::text[], $8::uuid[], $9::text[]);

-- name: post_transfer
-- A refund's or payout's entry pair of one kind (approved: the shop's balance to what is owed; sent: what
-- is owed to the deposits it spent; fee; cancelled: back to the shop). A unique index refuses a kind twice.
INSERT INTO ledger_entries (entry_group, account, shop_id, chain, asset, amount, kind, payment_id, memo,
                            transfer_id)
SELECT $1, a.account, $3, $4, $5, a.amount, $6, $7, $8, $9
FROM unnest($2::text[], $10::numeric[]) AS a(account, amount);

-- name: balances
-- The shop's balance per chain and asset (the merchant account is a credit, so negated), apart for
-- money paid into the platform's wallet (custodial: the platform holds it) and into the shop's own.
-- (a payout's entries belong to no payment: payouts move custodial money only)
SELECT l.chain, l.asset, coalesce(p.wallet_id IS NULL, true) AS custodial, -sum(l.amount) AS balance
FROM ledger_entries l LEFT JOIN crypto_payments p ON p.id = l.payment_id
WHERE l.account = $1
GROUP BY l.chain, l.asset, coalesce(p.wallet_id IS NULL, true) ORDER BY l.chain, l.asset, custodial;

-- name: history
-- The shop's ledger entries, newest first, before an entry id (keyset page).
SELECT l.id, l.entry_group, l.chain, l.asset, -l.amount AS amount, l.kind, l.payment_id, l.memo, l.created_at,
       coalesce(p.wallet_id IS NULL, true) AS custodial, l.transfer_id
FROM ledger_entries l LEFT JOIN crypto_payments p ON p.id = l.payment_id
WHERE l.account = $1 AND l.id < $2 ORDER BY l.id DESC LIMIT $3;
