-- 0015 the indexer follows what wallets spend: an input spending an output beanpay recorded (a deposit
-- to a watched address: a payment, change, a refund arriving) is recorded against it, reorg-safe like
-- deposits (confirming, confirmed, orphaned when its block leaves the chain), so what a wallet holds on
-- chain can be told from what the ledger says it should.
CREATE TABLE output_spends (
    chain         varchar(32) NOT NULL,
    txid          varchar(66) NOT NULL,   -- the spent output
    output_index  integer NOT NULL,
    spending_txid varchar(66) NOT NULL,
    block_hash    varchar(66),
    block_height  bigint,
    status        varchar(16) NOT NULL CHECK (status IN ('confirming', 'confirmed', 'orphaned')),
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (chain, txid, output_index, spending_txid),
    CHECK ((status = 'orphaned') = (block_hash IS NULL))
);
CREATE INDEX output_spends_confirming_idx ON output_spends (chain, block_height) WHERE status = 'confirming';
CREATE INDEX output_spends_open_idx ON output_spends (chain, block_height) WHERE status <> 'orphaned';
CREATE INDEX output_spends_spender_idx ON output_spends (chain, spending_txid);
