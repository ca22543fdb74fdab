-- 0016 invoices: what a customer is asked to pay, in a fiat amount, with the assets they may pay it in.
-- A coffee order owns one (made with the order, its asset picked with it); an integration makes one on
-- its own (POST /v1/invoices) and the customer picks the asset at checkout: only then is the quote
-- locked and an address handed out, through the same order and payment rows (an order of type
-- `invoice`, without items), so there is one payment path. An invoice's status is its payment's.
CREATE TABLE invoices (
    id            uuid PRIMARY KEY,
    shop_id       uuid NOT NULL REFERENCES coffee_shops (id),
    order_id      uuid UNIQUE REFERENCES coffee_orders (id),  -- set once an asset is picked
    amount        numeric(12, 2) NOT NULL CHECK (amount > 0),
    currency      char(3) NOT NULL,
    assets        text[] NOT NULL CHECK (cardinality(assets) > 0),  -- offered, as chain/SYMBOL
    order_ref     varchar(200),
    buyer_email   varchar(320),
    redirect_url  varchar(2000),
    tolerance_bps integer NOT NULL CHECK (tolerance_bps BETWEEN 0 AND 1000),
    speed         varchar(8) NOT NULL CHECK (speed IN ('medium', 'low')),  -- confirmations asked of a payment
    expires_at    timestamptz NOT NULL,
    cancelled_at  timestamptz,
    created_by    uuid,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    version       integer NOT NULL DEFAULT 1
);
CREATE INDEX invoices_shop_created_idx ON invoices (shop_id, created_at, id);

-- an invoice with its status, derived, never stored twice: its payment's once an asset is picked; before,
-- new or expired; cancelled when called off. Exceptions are the payment's underpaid, overpaid and late.
CREATE VIEW invoice_states AS
SELECT i.id, i.shop_id, i.order_id, i.amount, i.currency, i.assets, i.order_ref, i.buyer_email, i.redirect_url,
       i.tolerance_bps, i.speed, i.expires_at, i.cancelled_at, i.created_at, i.updated_at, i.version,
       CASE WHEN i.cancelled_at IS NOT NULL THEN 'cancelled'
            WHEN p.id IS NULL THEN CASE WHEN i.expires_at <= now() THEN 'expired' ELSE 'new' END
            ELSE p.status END AS status,
       CASE WHEN p.status IN ('underpaid', 'overpaid', 'late') THEN p.status END AS exception
FROM invoices i LEFT JOIN crypto_payments p ON p.order_id = i.order_id;

-- a payment's own underpayment tolerance and confirmation speed (NULL: the deployment's defaults)
ALTER TABLE crypto_payments
    ADD COLUMN tolerance_bps integer CHECK (tolerance_bps BETWEEN 0 AND 1000),
    ADD COLUMN speed varchar(8) CHECK (speed IN ('medium', 'low'));

ALTER TABLE coffee_orders DROP CONSTRAINT coffee_orders_order_type_check;
ALTER TABLE coffee_orders ADD CONSTRAINT coffee_orders_order_type_check
    CHECK (order_type IN ('pickup', 'delivery', 'invoice'));

-- every order placed so far owns its invoice
INSERT INTO invoices (id, shop_id, order_id, amount, currency, assets, tolerance_bps, speed, expires_at, created_at)
SELECT gen_random_uuid(), o.shop_id, o.id, greatest(o.total_amount, 0.01), o.currency,
       ARRAY[coalesce(o.chain, 'btc') || '/' || coalesce(o.crypto_currency, 'BTC')], 50, 'low',
       coalesce(o.expires_at, o.created_at), o.created_at
FROM coffee_orders o;
