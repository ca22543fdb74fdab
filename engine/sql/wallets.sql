-- name: active
-- A shop's wallets in use, one per chain at most.
SELECT id, shop_id, chain, account_key, key_origin, treasury, gap_limit, next_index, next_change, created_at,
       retired_at
FROM wallets WHERE shop_id = $1 AND retired_at IS NULL ORDER BY chain;

-- name: by_id
-- One wallet, retired or not (a payment's wallet stays what it was paid into).
SELECT id, shop_id, chain, account_key, key_origin, treasury, gap_limit, next_index, next_change, created_at,
       retired_at
FROM wallets WHERE id = $1;

-- name: lock_active
-- The shop's wallet in use on a chain, locked (FOR UPDATE) while an address is handed out or it changes.
SELECT id, shop_id, chain, account_key, key_origin, treasury, gap_limit, next_index, next_change, created_at,
       retired_at
FROM wallets WHERE shop_id = $1 AND chain = $2 AND retired_at IS NULL FOR UPDATE;

-- name: retire
-- The wallet stops receiving new orders (its addresses stay watched and credited to it).
UPDATE wallets SET retired_at = now() WHERE id = $1 AND retired_at IS NULL;

-- name: add
-- A shop's new wallet on a chain (the partial unique index refuses a second active one).
INSERT INTO wallets (shop_id, chain, account_key, key_origin, treasury, gap_limit, created_by)
VALUES ($1, $2, $3, $4, $5, $6, $7)
RETURNING id, shop_id, chain, account_key, key_origin, treasury, gap_limit, next_index, next_change, created_at,
          retired_at;

-- name: set_gap_limit
-- A wallet's gap limit changes in place (it does not change where money goes).
UPDATE wallets SET gap_limit = $2 WHERE id = $1
RETURNING id, shop_id, chain, account_key, key_origin, treasury, gap_limit, next_index, next_change, created_at,
          retired_at;

-- name: gap
-- Receive addresses handed out after the wallet's last used one (used: any deposit ever seen there,
-- orphaned ones too), i.e. the run of never-used addresses its owner's wallet software must scan past.
SELECT w.next_index - coalesce((
    SELECT max(a.derivation_index) + 1 FROM watched_addresses a
    WHERE a.wallet_id = w.id AND a.key_chain = 0
      AND EXISTS (SELECT 1 FROM deposits d WHERE d.chain = a.chain AND d.address = a.address)), 0) AS gap
FROM wallets w WHERE w.id = $1;

-- name: recyclable
-- The lowest receive address of the wallet whose order's payment expired with nothing ever paid to
-- it, a quarantine ($2) past its window: it may be handed to a new order. The payment row is locked;
-- rows another order is taking are skipped.
SELECT a.address, a.derivation_index, p.id AS payment_id
FROM watched_addresses a
JOIN crypto_payments p ON p.chain = a.chain AND p.wallet_address = a.address AND p.address_released_at IS NULL
WHERE a.wallet_id = $1 AND a.key_chain = 0 AND p.status = 'expired' AND p.resolution IS NULL
  AND p.amount_received = 0 AND p.expires_at + $2::interval <= now()
  AND NOT EXISTS (SELECT 1 FROM deposits d WHERE d.chain = a.chain AND d.address = a.address)
ORDER BY a.derivation_index LIMIT 1
FOR UPDATE OF p SKIP LOCKED;

-- name: release_address
-- The expired payment gives its address up (it stays expired; a later deposit there is the new order's).
UPDATE crypto_payments SET address_released_at = now(), updated_at = now()
WHERE id = $1 AND address_released_at IS NULL AND status = 'expired' AND amount_received = 0;

-- name: next_receive
-- The wallet's next receive index (0/i); the row is locked by lock_active until commit.
UPDATE wallets SET next_index = next_index + 1 WHERE id = $1 RETURNING next_index - 1;

-- name: next_change
-- The wallet's next change index (1/i), for a transaction beanpay builds.
UPDATE wallets SET next_change = next_change + 1 WHERE id = $1 RETURNING next_change - 1;

-- name: platform_next_change
-- The platform wallet's next change index (1/i), gap-free as its receive counter is.
INSERT INTO address_counters (chain, next_index) VALUES ('btc:change', 1)
ON CONFLICT (chain) DO UPDATE SET next_index = address_counters.next_index + 1
RETURNING next_index - 1;
