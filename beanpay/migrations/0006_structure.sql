-- 0006 structure: one stock rule, incremental watched-address reads, idempotency keys recorded with
-- the change they answer for, and a halted state for a follower that must not guess.

-- A supply's status is derived from what can still be sold (on hand minus held for unpaid orders),
-- never written: the API and the engine used to compute it in three places that disagreed.
ALTER TABLE coffee_supplies ADD COLUMN discontinued boolean NOT NULL DEFAULT false;
UPDATE coffee_supplies SET discontinued = true WHERE status = 'discontinued';
DROP INDEX coffee_supplies_status_idx;
ALTER TABLE coffee_supplies DROP COLUMN status;
ALTER TABLE coffee_supplies ADD COLUMN status varchar(20) NOT NULL GENERATED ALWAYS AS (
    CASE WHEN discontinued THEN 'discontinued'
         WHEN quantity - reserved <= 0 THEN 'out_of_stock'
         WHEN quantity - reserved <= reorder_level THEN 'low_stock'
         ELSE 'in_stock' END) STORED;
CREATE INDEX coffee_supplies_status_idx ON coffee_supplies (status);

-- The follower reads new watched addresses by the id of the transaction that wrote them: rows from
-- transactions at or after the oldest one running at its last read. A timestamp cannot do this
-- (a row is stamped when its transaction starts and becomes visible when it commits, later).
ALTER TABLE watched_addresses ADD COLUMN created_xid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX watched_addresses_xid_idx ON watched_addresses (chain, created_xid);

-- Idempotency keys are now written in the same transaction as the change they answer for, together
-- with the response, so a crash can never separate the two (no in-flight rows any more). Keys are
-- scoped to the principal (subject, role and shop scopes) and expire. Stored keys of the old shape
-- are dropped: a retry in flight across this upgrade runs again, which is why keys are short-lived.
DROP TABLE idempotency_keys;
CREATE TABLE idempotency_keys (
    principal      text NOT NULL,
    key            varchar(255) NOT NULL,
    method         varchar(10) NOT NULL,
    path           text NOT NULL,
    request_hash   bytea NOT NULL,
    status_code    integer NOT NULL,
    response_body  bytea NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    PRIMARY KEY (principal, key)
);
CREATE INDEX idempotency_keys_expires_idx ON idempotency_keys (expires_at);

-- A follower that met a reorg deeper than the kept window stops and records why; it stays halted
-- (no follower resumes) until an operator rewinds the index with `beanpay chain reorg`.
ALTER TABLE chain_cursors ADD COLUMN halted_at timestamptz, ADD COLUMN halt_reason text;
