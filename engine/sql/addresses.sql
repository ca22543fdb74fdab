-- name: allocate_index
-- The next BIP84 derivation index of a chain. Locks the chain's counter row until commit, so
-- concurrent orders get distinct indexes and a rolled-back order gives its index back (no gaps).
INSERT INTO address_counters (chain, next_index) VALUES ($1, 1)
ON CONFLICT (chain) DO UPDATE SET next_index = address_counters.next_index + 1
RETURNING next_index - 1;

-- name: watch
-- Starts watching an address (the indexers read it from the next block on); a derived one is on key
-- chain $6 (0 receive, 1 change) of wallet $7 (NULL: the platform's).
INSERT INTO watched_addresses (chain, address, script, derivation_index, key_chain, order_id, wallet_id, purpose)
VALUES ($1, $2, $3, $4, CASE WHEN $4::bigint IS NOT NULL THEN $6::smallint END, $5, $7, $8);
