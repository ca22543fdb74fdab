-- 0013 merchants' own wallets. A shop may set, per chain, its own receiving wallet: for Bitcoin the
-- BIP84 account public key its addresses derive from, for an EVM chain the treasury its forwarders
-- flush to. A shop without one on a chain is paid into the platform's wallet from the configuration
-- (wallet_id NULL on its payments: custodial). A wallet row never changes what it pays to: changing a
-- wallet retires the row and adds a new one, so addresses handed out stay watched and credited to the
-- wallet they were derived from.
CREATE TABLE wallets (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    shop_id     uuid NOT NULL REFERENCES coffee_shops (id),
    chain       varchar(32) NOT NULL,
    account_key text,          -- Bitcoin: the account xpub/zpub (public; a private key is refused)
    key_origin  varchar(120),  -- Bitcoin: [fingerprint/84h/coin'h/account'h] of the account, for signers
    treasury    varchar(42),   -- EVM: checksummed address the shop's forwarders flush to
    -- receive addresses never used in a row a merchant's wallet software still scans (BIP44 gap limit)
    gap_limit   integer NOT NULL DEFAULT 20 CHECK (gap_limit BETWEEN 1 AND 10000),
    next_index  bigint NOT NULL DEFAULT 0 CHECK (next_index >= 0),   -- receive chain 0/i
    next_change bigint NOT NULL DEFAULT 0 CHECK (next_change >= 0),  -- change chain 1/i
    created_by  uuid,
    created_at  timestamptz NOT NULL DEFAULT now(),
    retired_at  timestamptz,
    CHECK ((chain = 'btc') = (account_key IS NOT NULL)),
    CHECK ((chain = 'btc') = (treasury IS NULL))
);
CREATE UNIQUE INDEX wallets_active_uq ON wallets (shop_id, chain) WHERE retired_at IS NULL;

-- the platform's change chain (1/i) next to its receive chain; address_counters keys: 'btc', 'btc:change'
ALTER TABLE watched_addresses
    ADD COLUMN wallet_id uuid REFERENCES wallets (id),
    ADD COLUMN key_chain smallint CHECK (key_chain IN (0, 1));
UPDATE watched_addresses SET key_chain = 0 WHERE derivation_index IS NOT NULL;
ALTER TABLE watched_addresses DROP CONSTRAINT watched_addresses_index_uq;
ALTER TABLE watched_addresses ADD CONSTRAINT watched_addresses_derived CHECK ((derivation_index IS NULL) = (key_chain IS NULL));
CREATE UNIQUE INDEX watched_addresses_platform_index_uq ON watched_addresses (chain, key_chain, derivation_index)
    WHERE wallet_id IS NULL AND derivation_index IS NOT NULL;
CREATE UNIQUE INDEX watched_addresses_wallet_index_uq ON watched_addresses (wallet_id, key_chain, derivation_index)
    WHERE wallet_id IS NOT NULL;

-- a payment remembers the wallet it is paid into (NULL: the platform's), and an address of an order
-- that expired with nothing ever paid to it may be handed to a later order (address_released_at)
ALTER TABLE crypto_payments
    ADD COLUMN wallet_id uuid REFERENCES wallets (id),
    ADD COLUMN address_released_at timestamptz;
ALTER TABLE crypto_payments DROP CONSTRAINT crypto_payments_address_uq;
CREATE UNIQUE INDEX crypto_payments_address_uq ON crypto_payments (chain, wallet_address)
    WHERE address_released_at IS NULL;
CREATE INDEX crypto_payments_wallet_idx ON crypto_payments (wallet_id) WHERE wallet_id IS NOT NULL;
