-- name: post
-- Appends entry pairs (debit deposits:<chain>:<asset>, credit merchant:<shop>); the table refuses
-- updates and deletes, and a deferred trigger checks at commit that every entry group balances.
INSERT INTO ledger_entries (entry_group, account, shop_id, chain, asset, amount, kind, payment_id, memo)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::text[], $6::numeric[],
                     $7::text[], $8::uuid[], $9::text[]);

-- name: balances
-- What the platform owes the shop per chain and asset (the merchant account is a credit, so negated).
SELECT chain, asset, -sum(amount) AS balance FROM ledger_entries WHERE account = $1
GROUP BY chain, asset ORDER BY chain, asset;

-- name: history
-- The shop's ledger entries, newest first, before an entry id (keyset page).
SELECT id, entry_group, chain, asset, -amount AS amount, kind, payment_id, memo, created_at
FROM ledger_entries WHERE account = $1 AND id < $2 ORDER BY id DESC LIMIT $3;
