-- 0026 a Bitcoin payment seen unconfirmed whose transaction is replaced (a fee bump, or its output sent
-- elsewhere) or dropped from the mempool no longer counts: its deposit is `replaced` (with the replacing
-- txid where known) or `dropped`, never credited, and the order waits again. The inputs of each transaction
-- seen paying a watched address are kept, so a conflict (one of them spent by another transaction) can be
-- told from a drop (all of them unspent again).
ALTER TABLE deposits DROP CONSTRAINT deposits_status_check;
ALTER TABLE deposits ADD CONSTRAINT deposits_status_check
    CHECK (status IN ('seen', 'confirming', 'confirmed', 'orphaned', 'replaced', 'dropped'));
ALTER TABLE deposits ADD COLUMN replaced_by varchar(66);

CREATE TABLE seen_inputs (
    chain       varchar(32) NOT NULL,
    txid        varchar(66) NOT NULL,  -- the transaction seen paying a watched address
    prev_txid   varchar(66) NOT NULL,  -- an output it spends
    prev_vout   integer NOT NULL CHECK (prev_vout >= 0),
    seen_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (chain, txid, prev_txid, prev_vout)
);
CREATE INDEX deposits_seen_idx ON deposits (chain, txid) WHERE status = 'seen';
