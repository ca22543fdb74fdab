-- 0025 a transfer's transactions, each able to pay it once and only it. A dropped transaction can be
-- broadcast again by anyone who kept it, so a retry replaces it by one that conflicts with it (Bitcoin:
-- spending the same inputs, at a higher fee; EVM: the same sender and nonce, at higher fees) and the
-- transaction it replaces is kept here: until the retry's is mined, either may be, and tracking follows
-- both (the transfer completes by whichever confirms, with that one's fee).
CREATE TABLE transfer_attempts (
    transfer_id  uuid NOT NULL REFERENCES transfers (id),
    chain        varchar(32) NOT NULL,
    txid         varchar(66) NOT NULL,
    batch_id     uuid,             -- the Bitcoin payouts it paid together
    psbt         text,             -- Bitcoin: the PSBT it was signed from (its inputs and fee)
    signed_tx    text,             -- EVM hot wallet: the raw transaction (its fees)
    sender       varchar(42),      -- EVM: who sent it, and its nonce
    sender_nonce bigint,
    network_fee  numeric(78, 0),   -- the transfer's share of its fee
    replaced_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (transfer_id, txid)
);
CREATE INDEX transfer_attempts_txid_idx ON transfer_attempts (chain, txid);
CREATE INDEX transfer_attempts_sender_idx ON transfer_attempts (sender, chain) WHERE sender IS NOT NULL;

-- When a hot wallet signed the transaction (its daily limit counts it from then, before it is broadcast).
ALTER TABLE transfers ADD COLUMN signed_at timestamptz;

-- One transaction pays one transfer: the payouts of a Bitcoin batch share theirs, nothing else does
-- (Lightning refunds keep their payment hash there, which lnd pays once; not a transaction on chain).
CREATE UNIQUE INDEX transfers_txid_once_uq ON transfers (chain, lower(txid))
    WHERE txid IS NOT NULL AND batch_id IS NULL AND method IS DISTINCT FROM 'lightning';
