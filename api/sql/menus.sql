-- name: product_owner
-- A product that is not deleted, with the shop it belongs to (NULL: shared); no row if there is none.
SELECT shop_id FROM products WHERE id = $1 AND status <> 'deleted';

-- name: lock_entry
-- A shop's menu entry for a product, locked (FOR UPDATE) for a change.
SELECT shop_id, product_id, price, available, updated_at FROM shop_products
WHERE shop_id = $1 AND product_id = $2 FOR UPDATE;

-- name: insert_entry
-- A product goes on a shop's menu with a copy of its options as they are now (the shop's prices from
-- then on); a second time is shop_products_shop_product_uq: a 409.
INSERT INTO shop_products (shop_id, product_id, price, available, customizations)
SELECT $1, $2, $3, $4, p.customizations FROM products p WHERE p.id = $2
RETURNING shop_id, product_id, price, available, updated_at;

-- name: update_entry
-- A menu entry's price and availability; the shop takes the product's options as they are now.
UPDATE shop_products sp SET price = $3, available = $4, customizations = p.customizations, updated_at = now()
FROM products p WHERE sp.shop_id = $1 AND sp.product_id = $2 AND p.id = sp.product_id
RETURNING sp.shop_id, sp.product_id, sp.price, sp.available, sp.updated_at;

-- name: delete_entry
-- A product comes off a shop's menu.
DELETE FROM shop_products WHERE shop_id = $1 AND product_id = $2
RETURNING shop_id, product_id, price, available, updated_at;

-- name: menu
-- A shop's menu: its products that are not deleted, available only if both the entry and the product are,
-- with the shop's own copy of their options.
SELECT p.id AS product_id, p.name, p.category, p.description, p.image_url, sp.price,
       sp.available AND p.status = 'active' AS available, sp.customizations::text AS customizations
FROM shop_products sp JOIN products p ON p.id = sp.product_id
WHERE sp.shop_id = $1 AND p.status <> 'deleted'
ORDER BY p.category, p.name, p.id;
