-- name: shop_wallets
-- Every wallet a shop ever set (retired ones too: their addresses still hold what was paid to them).
SELECT id, chain, treasury FROM wallets WHERE shop_id = $1 ORDER BY chain, created_at;

-- name: btc_unspent
-- What shops' own Bitcoin wallets ($1) hold on chain as the indexer saw it: confirmed outputs at their
-- derived addresses that no mined input spends (the follower records their spends).
SELECT coalesce(sum(d.amount), 0) AS held
FROM deposits d JOIN watched_addresses a ON a.chain = d.chain AND a.address = d.address
WHERE d.chain = 'btc' AND d.status = 'confirmed' AND a.derivation_index IS NOT NULL AND a.wallet_id = ANY($1::uuid[])
  AND NOT EXISTS (SELECT 1 FROM output_spends s WHERE s.chain = d.chain AND s.txid = d.txid
                  AND s.output_index = d.output_index AND s.status <> 'orphaned');

-- name: platform_btc_outputs
-- The platform wallet's confirmed outputs the indexer saw no spend of (its spends are recorded only for
-- what refunds and payouts spend: the node is asked about each of these).
SELECT d.txid, d.output_index, d.amount
FROM deposits d JOIN watched_addresses a ON a.chain = d.chain AND a.address = d.address
WHERE d.chain = 'btc' AND d.status = 'confirmed' AND a.derivation_index IS NOT NULL AND a.wallet_id IS NULL
  AND NOT EXISTS (SELECT 1 FROM output_spends s WHERE s.chain = d.chain AND s.txid = d.txid
                  AND s.output_index = d.output_index AND s.status <> 'orphaned');

-- name: unswept_forwarders
-- Paid EVM forwarders of these wallets ($2; NULL: the platform's) not yet flushed to their treasury.
SELECT wallet_address, crypto_currency FROM crypto_payments
WHERE chain = $1 AND sweep_id IS NULL AND amount_received > 0
  AND (CASE WHEN $2::uuid[] IS NULL THEN wallet_id IS NULL ELSE wallet_id = ANY($2::uuid[]) END);

-- name: custodial_balances
-- What every shop's balance held by the platform adds up to, per chain and asset.
SELECT chain, asset, -sum(amount) AS balance FROM ledger_custody
WHERE account LIKE 'merchant:%' AND custodial
GROUP BY chain, asset;
