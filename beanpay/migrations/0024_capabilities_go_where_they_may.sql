-- 0024 capabilities go only where they may: refund claim links to webhook endpoints marked for them,
-- push subscriptions made with a checkout link kept to that one order, products owned by a shop.

-- An endpoint whose deliveries of a refund's events carry its claim token (made at delivery, never stored):
-- only a principal who may issue refunds at the shop marks one, or changes where a marked one points.
ALTER TABLE webhook_endpoints ADD COLUMN refund_claims boolean NOT NULL DEFAULT false;

-- A device subscribed from an order's checkout page, with its checkout token: told about that order only
-- (push_subscriptions are a person's devices, told about all their orders). One row per order and device,
-- so one browser may follow several orders; the keys of a row never change (a second registration of the
-- endpoint with other keys is refused: it would re-key someone's device).
CREATE TABLE order_push_subscriptions (
    id         uuid PRIMARY KEY,
    order_id   uuid NOT NULL,
    endpoint   varchar(2000) NOT NULL,
    p256dh     varchar(200) NOT NULL,
    auth       varchar(100) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    gone_at    timestamptz,  -- the push service answered 404 or 410: the device unsubscribed
    UNIQUE (order_id, endpoint)
);

-- The shop a product was made for: it goes on that shop's menu only, and that shop's managers change it.
-- NULL: a shared product (an operator's catalog, or made before 0024), changed by an operator, or by its
-- creator while no menu of a shop they do not manage carries it.
ALTER TABLE products ADD COLUMN shop_id uuid REFERENCES coffee_shops (id);
CREATE INDEX products_shop_idx ON products (shop_id) WHERE shop_id IS NOT NULL;
