-- name: cart_of
-- A customer's live cart at a shop (an expired one is not returned).
SELECT id, user_id, shop_id, expires_at, version, created_at, updated_at
FROM carts WHERE user_id = $1 AND shop_id = $2 AND expires_at > now();

-- name: lock_cart
-- A customer's cart at a shop, locked for a change or its checkout (FOR UPDATE), live or expired.
SELECT id, user_id, shop_id, expires_at, version, created_at, updated_at
FROM carts WHERE user_id = $1 AND shop_id = $2 FOR UPDATE;

-- name: open_cart
-- The customer's cart at the shop, made if there is none; an expired one is emptied and starts again.
-- Every change pushes its expiry out ($4: how long a cart lives after its last change).
WITH emptied AS (
    DELETE FROM cart_items WHERE cart_id IN (SELECT id FROM carts WHERE user_id = $2 AND shop_id = $3
                                             AND expires_at <= now())
)
INSERT INTO carts (id, user_id, shop_id, expires_at) VALUES ($1, $2, $3, now() + $4::interval)
ON CONFLICT (user_id, shop_id) DO UPDATE
    SET expires_at = excluded.expires_at, version = carts.version + 1, updated_at = now()
RETURNING id, user_id, shop_id, expires_at, version, created_at, updated_at;

-- name: items
-- A cart's lines, in the order they were added.
SELECT id, product_id, quantity, customizations::text AS customizations, added_at
FROM cart_items WHERE cart_id = $1 ORDER BY added_at, id;

-- name: add_item
-- A new line in a cart (at most $6 lines: none is added beyond).
INSERT INTO cart_items (id, cart_id, product_id, quantity, customizations)
SELECT $1, $2, $3, $4, $5::jsonb WHERE (SELECT count(*) FROM cart_items WHERE cart_id = $2) < $6
RETURNING id;

-- name: change_item
-- A line's quantity and options ($3, $4: NULL keeps it as it is).
UPDATE cart_items SET quantity = coalesce($3, quantity), customizations = coalesce($4::jsonb, customizations)
WHERE id = $1 AND cart_id = $2 RETURNING id;

-- name: remove_item
-- A line out of a cart.
DELETE FROM cart_items WHERE id = $1 AND cart_id = $2 RETURNING id;

-- name: delete_cart
-- A cart and its lines (emptied by the customer, or checked out into an order).
DELETE FROM carts WHERE id = $1;

-- name: menu_lines
-- The shop's menu rows for these products (price, options, whether stock is tracked), and the shop's
-- status and currency; a single row without a product when none matches.
WITH shop AS (SELECT status, currency FROM coffee_shops WHERE id = $1),
menu AS (
    SELECT p.id AS product_id, p.name, sp.customizations::text AS customizations, sp.price,
           EXISTS (SELECT 1 FROM coffee_supplies cs WHERE cs.shop_id = sp.shop_id AND cs.product_id = p.id) AS stocked
    FROM shop_products sp JOIN products p ON p.id = sp.product_id
    WHERE sp.shop_id = $1 AND sp.product_id = ANY($2::uuid[]) AND sp.available AND p.status = 'active'
)
SELECT shop.status AS shop_status, shop.currency, menu.product_id, menu.name, menu.customizations, menu.price,
       menu.stocked
FROM (SELECT 1) AS one LEFT JOIN shop ON true LEFT JOIN menu ON true;

-- name: purge_expired
-- Carts expired this long ($1) ago, deleted a batch ($2) at a time (their lines go with them).
DELETE FROM carts WHERE id IN (SELECT id FROM carts WHERE expires_at < now() - $1::interval
                               ORDER BY expires_at LIMIT $2) RETURNING id;

-- name: shop_of_item
-- The shop of the cart holding a line, if the cart is this customer's.
SELECT c.shop_id FROM cart_items i JOIN carts c ON c.id = i.cart_id WHERE i.id = $1 AND c.user_id = $2;
