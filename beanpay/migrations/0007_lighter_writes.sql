-- 0007 lighter writes. Measured with pg_stat_statements under the engine benchmark (200 payments/s),
-- PostgreSQL spent more CPU than every beanpay process together; four things did most of it.

-- 1. The ledger's balance check ran once per inserted row, scanning the table for the row's entry
-- group (no index: 1.3 ms a row and growing). Entries are only ever written a whole group at a time
-- (engine.ledger.post_many), so one check per statement over its own rows is as strict and costs
-- nothing that grows: every group a statement writes must balance per asset on its own.
DROP TRIGGER ledger_balanced ON ledger_entries;
DROP FUNCTION ledger_balanced();
CREATE FUNCTION ledger_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_entries GROUP BY entry_group, chain, asset HAVING sum(amount) <> 0) THEN
        RAISE EXCEPTION 'a ledger entry group does not balance' USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER ledger_balanced AFTER INSERT ON ledger_entries REFERENCING NEW TABLE AS new_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_balanced();
CREATE INDEX ledger_entries_group_idx ON ledger_entries (entry_group);

-- 2. Deposits queued their address for the engine one row (and one NOTIFY) at a time; now once per
-- statement, from the statement's own rows. An update queues only deposits whose status changed.
DROP TRIGGER deposits_enqueue_insert ON deposits;
DROP TRIGGER deposits_enqueue_status ON deposits;
DROP FUNCTION deposits_enqueue();
CREATE FUNCTION deposits_enqueue_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO payment_queue (chain, address) SELECT chain, address FROM new_deposits ORDER BY chain, address;
    IF FOUND THEN
        PERFORM pg_notify('beanpay_payments', '');
    END IF;
    RETURN NULL;
END $$;
CREATE FUNCTION deposits_enqueue_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO payment_queue (chain, address)
    SELECT n.chain, n.address FROM new_deposits n JOIN old_deposits o ON o.id = n.id
    WHERE o.status IS DISTINCT FROM n.status ORDER BY n.chain, n.address;
    IF FOUND THEN
        PERFORM pg_notify('beanpay_payments', '');
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER deposits_enqueue_inserted AFTER INSERT ON deposits REFERENCING NEW TABLE AS new_deposits
    FOR EACH STATEMENT EXECUTE FUNCTION deposits_enqueue_inserted();
CREATE TRIGGER deposits_enqueue_moved AFTER UPDATE ON deposits
    REFERENCING OLD TABLE AS old_deposits NEW TABLE AS new_deposits
    FOR EACH STATEMENT EXECUTE FUNCTION deposits_enqueue_moved();

-- 3. Every confirming deposit was rewritten on every block to store its confirmation count, which
-- is derived (chain tip - block height + 1) and is now computed where it is read. A deposit is
-- written when it appears, confirms or is orphaned; finding those that confirm reads an index of
-- confirming deposits only (the old one held every confirmed deposit ever).
ALTER TABLE deposits DROP COLUMN confirmations;
CREATE INDEX deposits_confirming_idx ON deposits (chain, block_height) WHERE status = 'confirming';

-- 4. A published event was marked with an UPDATE (a new row version and three index entries each).
-- The outbox is a queue: the relay now deletes what Kafka acknowledged (Kafka keeps the history),
-- so the table holds only what is still to be published.
DELETE FROM event_outbox WHERE published_at IS NOT NULL;
DROP INDEX event_outbox_pending_idx;
ALTER TABLE event_outbox DROP COLUMN published_at;
