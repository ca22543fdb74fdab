-- 0004: one payment_queue row per deposit change, not one per address.
-- With one row per address, a change committed while an engine held that address's row (claimed
-- before the change, settling from the deposits as they were) found the row present, added nothing,
-- and the engine then deleted it: the change was never settled (a lost wake-up, seen under load).
-- Now every change appends its own row, invisible to engines until the indexer commits; engines
-- take rows by id and settle each address once per batch (settling is idempotent).
ALTER TABLE payment_queue DROP CONSTRAINT payment_queue_pkey;
ALTER TABLE payment_queue ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY;
DROP INDEX payment_queue_age_idx;
CREATE INDEX payment_queue_address_idx ON payment_queue (chain, address);

CREATE OR REPLACE FUNCTION deposits_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO payment_queue (chain, address) VALUES (NEW.chain, NEW.address);
    PERFORM pg_notify('beanpay_payments', '');
    RETURN NULL;
END $$;
