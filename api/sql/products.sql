-- name: insert
-- A new product, created by $11, of shop $12 (NULL: shared).
INSERT INTO products (name, category, base_price, currency, description, image_url, ingredients, nutritional_info,
                      customizations, status, created_by, shop_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
RETURNING id, name, category, base_price, currency, description, image_url, ingredients::text AS ingredients,
          nutritional_info::text AS nutritional_info, customizations::text AS customizations, status, version,
          created_at, updated_at, created_by, shop_id;

-- name: fetch
-- A product that is not deleted, with who created it.
SELECT id, name, category, base_price, currency, description, image_url, ingredients::text AS ingredients,
       nutritional_info::text AS nutritional_info, customizations::text AS customizations, status, version,
       created_at, updated_at, created_by, shop_id
FROM products WHERE id = $1 AND status <> 'deleted';

-- name: lock
-- A product that is not deleted, locked (FOR UPDATE) for a change.
SELECT id, name, category, base_price, currency, description, image_url, ingredients::text AS ingredients,
       nutritional_info::text AS nutritional_info, customizations::text AS customizations, status, version,
       created_at, updated_at, created_by, shop_id
FROM products WHERE id = $1 AND status <> 'deleted' FOR UPDATE;

-- name: page
-- Products after the keyset cursor ($2, $3), in status $4 (NULL: any but deleted), of category $5,
-- whose lower-case name contains the LIKE pattern $6, created by $7 (all filters optional).
SELECT id, name, category, base_price, currency, description, image_url, ingredients::text AS ingredients,
       nutritional_info::text AS nutritional_info, customizations::text AS customizations, status, version,
       created_at, updated_at, created_by, shop_id
FROM products
WHERE ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3::uuid))
  AND CASE WHEN $4::text IS NULL THEN status <> 'deleted' ELSE status = $4 END
  AND ($5::text IS NULL OR category = $5)
  AND ($6::text IS NULL OR lower(name) LIKE $6)
  AND ($7::uuid IS NULL OR created_by = $7)
ORDER BY created_at, id LIMIT $1;

-- name: update
-- Writes a product's fields (the patch merged into the locked row), bumping its version.
UPDATE products SET name = $2, category = $3, base_price = $4, description = $5, image_url = $6, ingredients = $7,
       nutritional_info = $8, customizations = $9, status = $10, version = version + 1, updated_at = now()
WHERE id = $1
RETURNING id, name, category, base_price, currency, description, image_url, ingredients::text AS ingredients,
          nutritional_info::text AS nutritional_info, customizations::text AS customizations, status, version,
          created_at, updated_at, created_by, shop_id;

-- name: delete
-- A product is deleted softly: hidden from reads and menus, kept for past orders.
UPDATE products SET status = 'deleted', version = version + 1, updated_at = now() WHERE id = $1;

-- name: menus_with
-- The shops whose menu lists a product (their cached menus are stale after it changes).
SELECT shop_id FROM shop_products WHERE product_id = $1;
