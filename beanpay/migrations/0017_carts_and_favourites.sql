-- 0017 carts and favourites. A customer keeps one cart per shop: lines of products with their options,
-- priced live from the menu whenever it is read (a price the shop changed shows at once), never stored.
-- A cart expires some days after its last change; checking it out turns it into an order and deletes it
-- in the order's own transaction. Favourites are products or shops a person marked; read through the
-- design's cache key user:{user_id}:favorites. Customers come from identity providers, so user ids here
-- are not bound to the users table.
CREATE TABLE carts (
    id         uuid PRIMARY KEY,
    user_id    uuid NOT NULL,
    shop_id    uuid NOT NULL REFERENCES coffee_shops (id),
    expires_at timestamptz NOT NULL,
    version    integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, shop_id)
);
CREATE INDEX carts_expires_at_idx ON carts (expires_at);

CREATE TABLE cart_items (
    id             uuid PRIMARY KEY,
    cart_id        uuid NOT NULL REFERENCES carts (id) ON DELETE CASCADE,
    product_id     uuid NOT NULL REFERENCES products (id),
    quantity       integer NOT NULL CHECK (quantity BETWEEN 1 AND 100),
    customizations jsonb NOT NULL DEFAULT '{}'::jsonb,
    added_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cart_items_cart_idx ON cart_items (cart_id, added_at, id);

CREATE TABLE user_favorites (
    user_id    uuid NOT NULL,
    kind       varchar(8) NOT NULL CHECK (kind IN ('product', 'shop')),
    target_id  uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, kind, target_id)
);
