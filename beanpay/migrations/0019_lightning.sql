-- 0019 lightning: BOLT11 invoices on lnd nodes as a second rail for Bitcoin payments.
-- lightning_nodes: the nodes beanpay issues invoices on. A shop's own node (its REST URL, TLS certificate
-- and an invoice-only macaroon, sealed with a key from the environment, never usable from this table alone),
-- or, with shop_id NULL, the platform's custodial node (its macaroon comes from the environment; the row
-- holds only its checkpoint and health). settle_index is where the node's settlement stream resumes: it
-- moves in the same transaction as the payments that stream settled, so nothing is missed or counted twice.
CREATE TABLE lightning_nodes (
    id               uuid PRIMARY KEY,
    shop_id          uuid UNIQUE REFERENCES coffee_shops (id),
    rest_url         varchar(2000) NOT NULL,
    tls_cert         text NOT NULL,
    macaroon_sealed  bytea,
    -- a second macaroon the merchant may give, that may pay (refunds over Lightning), and its daily cap
    pay_macaroon_sealed   bytea,
    pay_daily_limit_msat  numeric(78,0) CHECK (pay_daily_limit_msat >= 0),
    pubkey           varchar(66) NOT NULL,
    alias            varchar(64) NOT NULL DEFAULT '',
    settle_index     bigint NOT NULL DEFAULT 0 CHECK (settle_index >= 0),
    health           varchar(16) NOT NULL DEFAULT 'unknown'
                     CHECK (health IN ('unknown', 'ready', 'down', 'not_synced', 'no_liquidity')),
    health_reason    text,
    inbound_msat     numeric(78,0),
    checked_at       timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CHECK ((shop_id IS NULL) = (macaroon_sealed IS NULL))
);
-- one platform node row per node identity
CREATE UNIQUE INDEX lightning_nodes_platform_idx ON lightning_nodes (pubkey) WHERE shop_id IS NULL;

-- An invoice issued for a payment. Settled invoices are deposits to the payment (settlement reads them with
-- the on-chain ones), final at once: Lightning has no confirmations. One open invoice per payment.
CREATE TABLE lightning_invoices (
    payment_hash   varchar(64) PRIMARY KEY,
    node_id        uuid NOT NULL REFERENCES lightning_nodes (id),
    payment_id     uuid NOT NULL REFERENCES crypto_payments (id),
    order_id       uuid NOT NULL,
    bolt11         text NOT NULL,
    description    text NOT NULL,  -- its SHA-256 is the invoice's description hash
    amount_msat    numeric(78,0) NOT NULL CHECK (amount_msat > 0),
    expires_at     timestamptz NOT NULL,
    state          varchar(12) NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'settled', 'cancelled')),
    amt_paid_msat  numeric(78,0) CHECK (amt_paid_msat > 0),
    settle_index   bigint,
    settled_at     timestamptz,
    cancelled_at   timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CHECK ((state = 'settled') = (amt_paid_msat IS NOT NULL AND settled_at IS NOT NULL))
);
CREATE UNIQUE INDEX lightning_invoices_open_idx ON lightning_invoices (payment_id) WHERE state = 'open';
CREATE INDEX lightning_invoices_payment_idx ON lightning_invoices (payment_id);
CREATE INDEX lightning_invoices_expiring_idx ON lightning_invoices (expires_at) WHERE state = 'open';

-- Refunds over Lightning: the customer's BOLT11 invoice for the refund's amount, paid by a macaroon that may
-- pay (the shop's own, or the platform's from the environment), within its daily limit.
ALTER TABLE transfers ADD COLUMN lightning_invoice text;
ALTER TABLE transfers DROP CONSTRAINT transfers_method_check;
ALTER TABLE transfers ADD CONSTRAINT transfers_method_check
    CHECK (method IN ('psbt', 'hot_wallet', 'external', 'lightning'));
