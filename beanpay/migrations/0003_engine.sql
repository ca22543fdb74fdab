-- 0003 engine: quotes on payments, stock reservations, the payment work queue, the ledger, webhooks, sweeps.

-- stock held for unpaid orders; `quantity` stays what is on the shelf until a payment commits it
ALTER TABLE coffee_supplies
    ADD COLUMN reserved integer NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    ADD CONSTRAINT coffee_supplies_reserved_on_hand CHECK (reserved <= quantity);

ALTER TABLE coffee_orders ADD COLUMN expires_at timestamptz;
CREATE INDEX coffee_orders_shop_created_idx ON coffee_orders (shop_id, created_at, id);
CREATE INDEX coffee_orders_user_created_idx ON coffee_orders (user_id, created_at, id);

ALTER TABLE crypto_payments
    ADD COLUMN token_address  varchar(42),
    ADD COLUMN chain_id       bigint,
    ADD COLUMN payment_uri    text NOT NULL DEFAULT '',
    ADD COLUMN rate_source    varchar(32) NOT NULL DEFAULT 'static',
    ADD COLUMN rate_as_of     timestamptz,
    ADD COLUMN resolution     varchar(16) CHECK (resolution IN ('accepted', 'refunded', 'settled')),
    ADD COLUMN resolved_at    timestamptz,
    ADD COLUMN credited       numeric(78,0) NOT NULL DEFAULT 0 CHECK (credited >= 0),
    ADD COLUMN sweep_id       uuid,
    ADD CONSTRAINT crypto_payments_order_uq UNIQUE (order_id);

CREATE TABLE order_reservations (
    order_id    uuid NOT NULL REFERENCES coffee_orders (id) ON DELETE CASCADE,
    supply_id   uuid NOT NULL REFERENCES coffee_supplies (id),
    quantity    integer NOT NULL CHECK (quantity > 0),
    status      varchar(16) NOT NULL CHECK (status IN ('reserved', 'committed', 'released')),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, supply_id)
);
CREATE INDEX order_reservations_supply_idx ON order_reservations (supply_id);

-- addresses whose deposits changed and whose payment must be re-assessed; filled by the indexer's
-- own transaction (trigger), drained by engine workers with FOR UPDATE SKIP LOCKED
CREATE TABLE payment_queue (
    chain      varchar(32) NOT NULL,
    address    varchar(128) NOT NULL,
    queued_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (chain, address)
);
CREATE INDEX payment_queue_age_idx ON payment_queue (queued_at);

CREATE FUNCTION deposits_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO payment_queue (chain, address) VALUES (NEW.chain, NEW.address) ON CONFLICT DO NOTHING;
    PERFORM pg_notify('beanpay_payments', '');
    RETURN NULL;
END $$;
CREATE TRIGGER deposits_enqueue AFTER INSERT OR UPDATE OF status, confirmations ON deposits
    FOR EACH ROW EXECUTE FUNCTION deposits_enqueue();

-- double-entry ledger, append-only. Signed base units: debit positive, credit negative; every
-- entry group sums to zero per asset. Accounts: `deposits:<chain>:<asset>` (funds at order addresses,
-- an asset) and `merchant:<shop id>` (what the platform holds for the shop, a liability).
CREATE TABLE ledger_entries (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    entry_group  uuid NOT NULL,
    account      varchar(96) NOT NULL,
    shop_id      uuid NOT NULL REFERENCES coffee_shops (id),
    chain        varchar(32) NOT NULL,
    asset        varchar(16) NOT NULL,
    amount       numeric(78,0) NOT NULL CHECK (amount <> 0),
    kind         varchar(16) NOT NULL CHECK (kind IN ('payment', 'reversal')),
    payment_id   uuid NOT NULL REFERENCES crypto_payments (id),
    memo         text,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ledger_entries_account_idx ON ledger_entries (account, chain, asset);
CREATE INDEX ledger_entries_shop_idx ON ledger_entries (shop_id, id);
CREATE INDEX ledger_entries_payment_idx ON ledger_entries (payment_id);

CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger_entries is append-only' USING ERRCODE = 'check_violation';
END $$;
CREATE TRIGGER ledger_append_only BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();

CREATE FUNCTION ledger_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM ledger_entries WHERE entry_group = NEW.entry_group
               GROUP BY chain, asset HAVING sum(amount) <> 0) THEN
        RAISE EXCEPTION 'ledger entry group % does not balance', NEW.entry_group USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER ledger_balanced AFTER INSERT ON ledger_entries
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_balanced();

CREATE TABLE webhook_endpoints (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    shop_id      uuid NOT NULL REFERENCES coffee_shops (id),
    url          varchar(2000) NOT NULL,
    event_types  text[] NOT NULL,
    secret       text NOT NULL,
    description  text,
    enabled      boolean NOT NULL DEFAULT true,
    version      integer NOT NULL DEFAULT 1,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_endpoints_shop_idx ON webhook_endpoints (shop_id);

CREATE TABLE webhook_deliveries (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    endpoint_id      uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id         uuid NOT NULL,
    event_type       varchar(64) NOT NULL,
    body             text NOT NULL,
    status           varchar(16) NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_status      integer,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz,
    CONSTRAINT webhook_deliveries_event_uq UNIQUE (endpoint_id, event_id)
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (endpoint_id, created_at);

CREATE TABLE webhook_attempts (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id  uuid NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt      integer NOT NULL,
    status_code  integer,
    error        text,
    duration_ms  integer NOT NULL,
    attempted_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_attempts_delivery_idx ON webhook_attempts (delivery_id, id);

CREATE TABLE evm_sweeps (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    chain       varchar(32) NOT NULL,
    tx_hash     varchar(66),
    status      varchar(16) NOT NULL CHECK (status IN ('submitted', 'confirmed', 'failed')),
    order_ids   uuid[] NOT NULL,
    error       text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
