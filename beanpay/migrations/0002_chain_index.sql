-- 0002 chain index: the unfinalized header window, per-chain checkpoints, watched addresses, deposits.

-- headers of indexed blocks, kept back to the finality depth; linked by parent hash
CREATE TABLE chain_blocks (
    chain        varchar(32) NOT NULL,
    height       bigint NOT NULL CHECK (height >= 0),
    hash         varchar(66) NOT NULL,
    parent_hash  varchar(66) NOT NULL,
    indexed_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (chain, height),
    CONSTRAINT chain_blocks_hash_uq UNIQUE (chain, hash)
);

-- one row per chain: where the index stands; moved in the same transaction as each block
CREATE TABLE chain_cursors (
    chain              varchar(32) PRIMARY KEY,
    tip_height         bigint NOT NULL,
    tip_hash           varchar(66) NOT NULL,
    node_tip_height    bigint,
    last_reorg_at      timestamptz,
    last_reorg_depth   integer,
    updated_at         timestamptz NOT NULL DEFAULT now()
);

-- per-order deposit addresses; index allocated without gaps or reuse from address_counters
CREATE TABLE address_counters (
    chain       varchar(32) PRIMARY KEY,
    next_index  bigint NOT NULL DEFAULT 0 CHECK (next_index >= 0)
);

CREATE TABLE watched_addresses (
    chain             varchar(32) NOT NULL,
    address           varchar(128) NOT NULL,
    script            bytea,
    derivation_index  bigint,
    order_id          uuid,
    created_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (chain, address),
    CONSTRAINT watched_addresses_index_uq UNIQUE (chain, derivation_index)
);
CREATE INDEX watched_addresses_order_idx ON watched_addresses (order_id);
CREATE INDEX watched_addresses_created_idx ON watched_addresses (chain, created_at);

-- a deposit is one output (BTC) or one transfer (EVM) to a watched address; identity is
-- (chain, asset, tx, output/log/call index), so a reorged deposit that is mined again is the same row
CREATE TABLE deposits (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    chain          varchar(32) NOT NULL,
    asset          varchar(16) NOT NULL,
    txid           varchar(66) NOT NULL,
    output_index   integer NOT NULL CHECK (output_index >= 0),
    address        varchar(128) NOT NULL,
    amount         numeric(78,0) NOT NULL CHECK (amount > 0),
    block_hash     varchar(66),
    block_height   bigint,
    confirmations  integer NOT NULL DEFAULT 0 CHECK (confirmations >= 0),
    status         varchar(16) NOT NULL CHECK (status IN ('seen', 'confirming', 'confirmed', 'orphaned')),
    first_seen_at  timestamptz NOT NULL DEFAULT now(),
    confirmed_at   timestamptz,
    orphaned_at    timestamptz,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT deposits_output_uq UNIQUE (chain, asset, txid, output_index),
    CHECK ((status IN ('confirming', 'confirmed')) = (block_hash IS NOT NULL)),
    FOREIGN KEY (chain, address) REFERENCES watched_addresses (chain, address)
);
CREATE INDEX deposits_address_idx ON deposits (chain, address);
CREATE INDEX deposits_open_idx ON deposits (chain, block_height) WHERE status IN ('confirming', 'confirmed');
CREATE INDEX deposits_status_idx ON deposits (status);
