-- name: insert
-- A new supply record (its status follows from the stock: a generated column).
INSERT INTO coffee_supplies (shop_id, product_id, quantity, unit, reorder_level) VALUES ($1, $2, $3, $4, $5)
RETURNING id, shop_id, product_id, quantity, unit, reorder_level, reserved, status, last_restocked, version,
          created_at, updated_at;

-- name: fetch
-- A supply record.
SELECT id, shop_id, product_id, quantity, unit, reorder_level, reserved, status, last_restocked, version,
       created_at, updated_at
FROM coffee_supplies WHERE id = $1;

-- name: lock
-- A supply record, locked (FOR UPDATE) for a change.
SELECT id, shop_id, product_id, quantity, unit, reorder_level, reserved, status, last_restocked, version,
       created_at, updated_at
FROM coffee_supplies WHERE id = $1 FOR UPDATE;

-- name: of_shop
-- A shop's supply records, oldest first.
SELECT id, shop_id, product_id, quantity, unit, reorder_level, reserved, status, last_restocked, version,
       created_at, updated_at
FROM coffee_supplies WHERE shop_id = $1 ORDER BY created_at, id;

-- name: update
-- Writes a supply's fields (the patch merged into the locked row). The CHECK reserved <= quantity
-- refuses taking away stock that unpaid orders hold.
UPDATE coffee_supplies SET quantity = $2, unit = $3, reorder_level = $4, discontinued = $5,
       version = version + 1, updated_at = now()
WHERE id = $1
RETURNING id, shop_id, product_id, quantity, unit, reorder_level, reserved, status, last_restocked, version,
          created_at, updated_at;

-- name: restock
-- Adds stock to a locked supply that is not discontinued.
UPDATE coffee_supplies SET quantity = quantity + $2, last_restocked = now(), version = version + 1, updated_at = now()
WHERE id = $1 AND NOT discontinued
RETURNING id, shop_id, product_id, quantity, unit, reorder_level, reserved, status, last_restocked, version,
          created_at, updated_at;

-- name: delete
-- Removes a supply record (its product is then no longer stock-tracked at the shop).
DELETE FROM coffee_supplies WHERE id = $1;

-- name: ids_of_shop
-- A shop's supply ids (their cached rows are stale after an order moved its stock).
SELECT id FROM coffee_supplies WHERE shop_id = $1;
