-- name: product_exists
-- Whether a product exists and is not deleted.
SELECT EXISTS (SELECT 1 FROM products WHERE id = $1 AND status <> 'deleted');

-- name: lock_entry
-- A shop's menu entry for a product, locked (FOR UPDATE) for a change.
SELECT shop_id, product_id, price, available, updated_at FROM shop_products
WHERE shop_id = $1 AND product_id = $2 FOR UPDATE;

-- name: insert_entry
-- A product goes on a shop's menu (a second time is shop_products_shop_product_uq: a 409).
INSERT INTO shop_products (shop_id, product_id, price, available) VALUES ($1, $2, $3, $4)
RETURNING shop_id, product_id, price, available, updated_at;

-- name: update_entry
-- A menu entry's price and availability.
UPDATE shop_products SET price = $3, available = $4, updated_at = now() WHERE shop_id = $1 AND product_id = $2
RETURNING shop_id, product_id, price, available, updated_at;

-- name: delete_entry
-- A product comes off a shop's menu.
DELETE FROM shop_products WHERE shop_id = $1 AND product_id = $2
RETURNING shop_id, product_id, price, available, updated_at;

-- name: menu
-- A shop's menu: its products that are not deleted, available only if both the entry and the product are.
SELECT p.id AS product_id, p.name, p.category, p.description, p.image_url, sp.price,
       sp.available AND p.status = 'active' AS available, p.customizations::text AS customizations
FROM shop_products sp JOIN products p ON p.id = sp.product_id
WHERE sp.shop_id = $1 AND p.status <> 'deleted'
ORDER BY p.category, p.name, p.id;
