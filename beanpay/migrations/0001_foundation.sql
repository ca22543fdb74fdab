-- 0001 foundation: catalog, supply, orders, payments, claims, users, audit, outbox, idempotency.
-- Crypto amounts are integers in base units (sats, wei, token units): NUMERIC(78,0) holds any uint256.
-- Fiat amounts are NUMERIC(12,2) in the shop's currency; the API enforces the currency's minor units.

CREATE TABLE users (
    id            uuid PRIMARY KEY,
    display_name  text,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE coffee_shops (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name           varchar(255) NOT NULL CHECK (length(btrim(name)) > 0),
    address        text NOT NULL,
    latitude       numeric(10,8) CHECK (latitude BETWEEN -90 AND 90),
    longitude      numeric(11,8) CHECK (longitude BETWEEN -180 AND 180),
    phone          varchar(20),
    email          varchar(255),
    currency       char(3) NOT NULL DEFAULT 'USD',
    opening_hours  jsonb,
    status         varchar(20) NOT NULL DEFAULT 'active'
                   CHECK (status IN ('active', 'closed', 'inactive', 'deleted')),
    version        integer NOT NULL DEFAULT 1,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CHECK ((latitude IS NULL) = (longitude IS NULL))
);
CREATE INDEX coffee_shops_location_idx ON coffee_shops (latitude, longitude);
CREATE INDEX coffee_shops_status_idx ON coffee_shops (status);
CREATE INDEX coffee_shops_created_idx ON coffee_shops (created_at, id);

-- role grants; staff and merchant roles are scoped to a shop, customer and operator are not
CREATE TABLE user_roles (
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role        varchar(20) NOT NULL CHECK (role IN ('customer', 'staff', 'merchant', 'operator')),
    shop_id     uuid REFERENCES coffee_shops (id) ON DELETE CASCADE,
    granted_at  timestamptz NOT NULL DEFAULT now(),
    CHECK ((role IN ('staff', 'merchant')) = (shop_id IS NOT NULL))
);
CREATE UNIQUE INDEX user_roles_grant_uq ON user_roles (user_id, role, coalesce(shop_id, '00000000-0000-0000-0000-000000000000'));
CREATE INDEX user_roles_shop_idx ON user_roles (shop_id);

CREATE TABLE products (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name              varchar(255) NOT NULL CHECK (length(btrim(name)) > 0),
    description       text,
    category          varchar(100) NOT NULL,
    base_price        numeric(12,2) NOT NULL CHECK (base_price >= 0),
    currency          char(3) NOT NULL DEFAULT 'USD',
    image_url         varchar(500),
    ingredients       jsonb NOT NULL DEFAULT '[]',
    nutritional_info  jsonb,
    customizations    jsonb NOT NULL DEFAULT '[]',
    status            varchar(20) NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive', 'deleted')),
    created_by        uuid,
    version           integer NOT NULL DEFAULT 1,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX products_category_idx ON products (category);
CREATE INDEX products_status_idx ON products (status);
CREATE INDEX products_name_idx ON products (lower(name) text_pattern_ops);
CREATE INDEX products_created_idx ON products (created_at, id);

CREATE TABLE shop_products (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    shop_id     uuid NOT NULL REFERENCES coffee_shops (id),
    product_id  uuid NOT NULL REFERENCES products (id),
    price       numeric(12,2) NOT NULL CHECK (price >= 0),
    available   boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT shop_products_shop_product_uq UNIQUE (shop_id, product_id)
);
CREATE INDEX shop_products_shop_idx ON shop_products (shop_id);
CREATE INDEX shop_products_product_idx ON shop_products (product_id);
CREATE INDEX shop_products_available_idx ON shop_products (available);

CREATE TABLE coffee_supplies (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    shop_id         uuid NOT NULL REFERENCES coffee_shops (id),
    product_id      uuid NOT NULL REFERENCES products (id),
    quantity        integer NOT NULL CHECK (quantity >= 0),
    unit            varchar(20) NOT NULL,
    reorder_level   integer NOT NULL DEFAULT 10 CHECK (reorder_level >= 0),
    status          varchar(20) NOT NULL
                    CHECK (status IN ('in_stock', 'low_stock', 'out_of_stock', 'discontinued')),
    last_restocked  timestamptz,
    version         integer NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT coffee_supplies_shop_product_uq UNIQUE (shop_id, product_id)
);
CREATE INDEX coffee_supplies_shop_idx ON coffee_supplies (shop_id);
CREATE INDEX coffee_supplies_product_idx ON coffee_supplies (product_id);
CREATE INDEX coffee_supplies_status_idx ON coffee_supplies (status);

CREATE TABLE coffee_orders (
    id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id               uuid NOT NULL,
    shop_id               uuid NOT NULL REFERENCES coffee_shops (id),
    total_amount          numeric(12,2) NOT NULL CHECK (total_amount >= 0),
    currency              char(3) NOT NULL,
    crypto_amount         numeric(78,0) CHECK (crypto_amount > 0),
    crypto_currency       varchar(16),
    chain                 varchar(32),
    payment_status        varchar(20) NOT NULL DEFAULT 'pending'
                          CHECK (payment_status IN ('pending', 'processing', 'confirmed', 'underpaid', 'overpaid',
                                                    'late', 'expired', 'failed', 'refunded')),
    order_status          varchar(20) NOT NULL DEFAULT 'pending'
                          CHECK (order_status IN ('pending', 'confirmed', 'preparing', 'ready', 'completed',
                                                  'cancelled', 'expired')),
    order_type            varchar(20) NOT NULL CHECK (order_type IN ('pickup', 'delivery')),
    pickup_time           timestamptz,
    delivery_address      text,
    special_instructions  text,
    version               integer NOT NULL DEFAULT 1,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    CHECK (order_type <> 'delivery' OR delivery_address IS NOT NULL)
);
CREATE INDEX coffee_orders_user_idx ON coffee_orders (user_id);
CREATE INDEX coffee_orders_shop_idx ON coffee_orders (shop_id);
CREATE INDEX coffee_orders_payment_status_idx ON coffee_orders (payment_status);
CREATE INDEX coffee_orders_order_status_idx ON coffee_orders (order_status);
CREATE INDEX coffee_orders_created_idx ON coffee_orders (created_at);

CREATE TABLE order_items (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    order_id        uuid NOT NULL REFERENCES coffee_orders (id) ON DELETE CASCADE,
    product_id      uuid NOT NULL REFERENCES products (id),
    product_name    varchar(255) NOT NULL,
    base_price      numeric(12,2) NOT NULL CHECK (base_price >= 0),
    final_price     numeric(12,2) NOT NULL CHECK (final_price >= 0),
    quantity        integer NOT NULL CHECK (quantity > 0),
    customizations  jsonb NOT NULL DEFAULT '[]'
);
CREATE INDEX order_items_order_idx ON order_items (order_id);
CREATE INDEX order_items_product_idx ON order_items (product_id);

CREATE TABLE crypto_payments (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    order_id          uuid NOT NULL REFERENCES coffee_orders (id),
    user_id           uuid NOT NULL,
    chain             varchar(32) NOT NULL,
    crypto_currency   varchar(16) NOT NULL,
    crypto_amount     numeric(78,0) NOT NULL CHECK (crypto_amount > 0),
    amount_received   numeric(78,0) NOT NULL DEFAULT 0 CHECK (amount_received >= 0),
    decimals          smallint NOT NULL CHECK (decimals BETWEEN 0 AND 36),
    fiat_amount       numeric(12,2) NOT NULL CHECK (fiat_amount >= 0),
    fiat_currency     char(3) NOT NULL,
    exchange_rate     numeric(38,18) NOT NULL CHECK (exchange_rate > 0),
    wallet_address    varchar(255) NOT NULL,
    transaction_hash  varchar(255),
    block_number      bigint,
    confirmations     integer NOT NULL DEFAULT 0 CHECK (confirmations >= 0),
    status            varchar(20) NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'processing', 'confirmed', 'underpaid', 'overpaid', 'late',
                                        'expired', 'failed', 'refunded', 'resolved')),
    expires_at        timestamptz NOT NULL,
    confirmed_at      timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT crypto_payments_address_uq UNIQUE (chain, wallet_address)
);
CREATE INDEX crypto_payments_order_idx ON crypto_payments (order_id);
CREATE INDEX crypto_payments_user_idx ON crypto_payments (user_id);
CREATE INDEX crypto_payments_tx_idx ON crypto_payments (transaction_hash);
CREATE INDEX crypto_payments_status_idx ON crypto_payments (status);
CREATE INDEX crypto_payments_expires_idx ON crypto_payments (expires_at);

CREATE TABLE order_claims (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    order_id      uuid NOT NULL REFERENCES coffee_orders (id),
    user_id       uuid NOT NULL,
    shop_id       uuid NOT NULL REFERENCES coffee_shops (id),
    claim_code    varchar(16) NOT NULL,
    status        varchar(20) NOT NULL CHECK (status IN ('active', 'processed', 'expired')),
    claimed_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz,
    processed_at  timestamptz,
    pickup_time   timestamptz,
    CONSTRAINT order_claims_code_uq UNIQUE (claim_code)
);
-- one live claim per order; an expired claim frees the order for a new one
CREATE UNIQUE INDEX order_claims_live_order_uq ON order_claims (order_id) WHERE status IN ('active', 'processed');
CREATE INDEX order_claims_user_idx ON order_claims (user_id);
CREATE INDEX order_claims_shop_idx ON order_claims (shop_id);
CREATE INDEX order_claims_status_idx ON order_claims (status);

-- who did what, with the row before and after; written in the same transaction as the change
CREATE TABLE audit_log (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at  timestamptz NOT NULL DEFAULT now(),
    actor_id     uuid,
    actor_role   varchar(20),
    action       varchar(64) NOT NULL,
    entity_type  varchar(64) NOT NULL,
    entity_id    text NOT NULL,
    before       jsonb,
    after        jsonb,
    request_id   text
);
CREATE INDEX audit_log_entity_idx ON audit_log (entity_type, entity_id, id);
CREATE INDEX audit_log_actor_idx ON audit_log (actor_id, id);
CREATE INDEX audit_log_time_idx ON audit_log (occurred_at);

-- transactional outbox: events are written with the change that causes them, published later by the relay
CREATE TABLE event_outbox (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id        uuid NOT NULL UNIQUE,
    event_type      varchar(64) NOT NULL,
    topic           varchar(64) NOT NULL,
    aggregate_type  varchar(64) NOT NULL,
    aggregate_id    text NOT NULL,
    payload         jsonb NOT NULL,
    occurred_at     timestamptz NOT NULL DEFAULT now(),
    published_at    timestamptz,
    attempts        integer NOT NULL DEFAULT 0,
    last_error      text
);
CREATE INDEX event_outbox_pending_idx ON event_outbox (id) WHERE published_at IS NULL;
CREATE INDEX event_outbox_aggregate_idx ON event_outbox (aggregate_id, id);

CREATE FUNCTION event_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('beanpay_outbox', '');
    RETURN NULL;
END $$;
CREATE TRIGGER event_outbox_notify AFTER INSERT ON event_outbox
    FOR EACH STATEMENT EXECUTE FUNCTION event_outbox_notify();

-- client retries: the first response to a key is stored and replayed
CREATE TABLE idempotency_keys (
    actor_id       uuid NOT NULL,
    key            varchar(255) NOT NULL,
    method         varchar(10) NOT NULL,
    path           text NOT NULL,
    request_hash   bytea NOT NULL,
    status_code    integer,
    response_body  bytea,
    created_at     timestamptz NOT NULL DEFAULT now(),
    completed_at   timestamptz,
    PRIMARY KEY (actor_id, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
