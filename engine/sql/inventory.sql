-- part: hold_stock
-- The stock an order holds, as CTEs (wanted, old, held): locks the shop's supply rows of the wanted products
-- in id order (two orders never deadlock) and raises `reserved` only where enough is available (quantity -
-- reserved). Both ways an order is written hold stock with it (reserve, and orders.sql's write_order).
wanted AS (
    SELECT * FROM unnest(:stocked_products::uuid[], :stocked_quantities::int[]) AS w(product_id, quantity)
), old AS (
    SELECT s.id, s.product_id, s.quantity, s.reserved, s.discontinued, s.status
    FROM coffee_supplies s WHERE s.shop_id = :shop_id AND s.product_id IN (SELECT product_id FROM wanted)
    ORDER BY s.id FOR UPDATE
), held AS (
    UPDATE coffee_supplies s SET reserved = s.reserved + w.quantity, version = s.version + 1, updated_at = now()
    FROM old o JOIN wanted w ON w.product_id = o.product_id
    WHERE s.id = o.id AND NOT o.discontinued AND o.quantity - o.reserved >= w.quantity
    RETURNING s.id, s.quantity, s.reserved, s.reorder_level, s.status, w.quantity AS held
)

-- name: reserve
-- Holds stock for an unpaid order (hold_stock) and records the reservations. One row per stock-tracked
-- product: `held` false means not enough.
WITH /* part: hold_stock */, recorded AS (
    INSERT INTO order_reservations (order_id, supply_id, quantity, status)
    SELECT :order_id, id, held, 'reserved' FROM held
)
SELECT o.id AS supply_id, o.product_id, h.id IS NOT NULL AS held,
       CASE WHEN o.discontinued THEN 0 ELSE o.quantity - o.reserved END AS available_before,
       o.status AS status_before, h.status AS status_after, h.quantity, h.reserved, h.reorder_level
FROM old o LEFT JOIN held h ON h.id = o.id;

-- name: release
-- Gives back what unpaid orders held: only `reserved` reservations move, so a second call is a no-op.
-- Locks the supply rows by their UPDATE.
WITH r AS (
    UPDATE order_reservations SET status = 'released', updated_at = now()
    WHERE order_id = ANY($1::uuid[]) AND status = 'reserved' RETURNING supply_id, quantity
), per_supply AS (SELECT supply_id, sum(quantity)::int AS quantity FROM r GROUP BY supply_id)
UPDATE coffee_supplies s SET reserved = s.reserved - r.quantity, version = s.version + 1, updated_at = now()
FROM per_supply r WHERE s.id = r.supply_id
RETURNING s.id AS supply_id, s.shop_id;

-- name: commit
-- Paid orders take their reserved stock off the shelf: on hand and held both drop (available is
-- unchanged). Locks the supply rows by their UPDATE.
WITH r AS (
    UPDATE order_reservations SET status = 'committed', updated_at = now()
    WHERE order_id = ANY($1::uuid[]) AND status = 'reserved' RETURNING supply_id, quantity
), per_supply AS (SELECT supply_id, sum(quantity)::int AS quantity FROM r GROUP BY supply_id)
UPDATE coffee_supplies s SET quantity = s.quantity - r.quantity, reserved = s.reserved - r.quantity,
       version = s.version + 1, updated_at = now()
FROM per_supply r WHERE s.id = r.supply_id
RETURNING s.id AS supply_id, s.shop_id;

-- name: uncommit
-- A reorg took payments back: their stock goes back on the shelf and is held for the orders again.
WITH r AS (
    UPDATE order_reservations SET status = 'reserved', updated_at = now()
    WHERE order_id = ANY($1::uuid[]) AND status = 'committed' RETURNING supply_id, quantity
), per_supply AS (SELECT supply_id, sum(quantity)::int AS quantity FROM r GROUP BY supply_id)
UPDATE coffee_supplies s SET quantity = s.quantity + r.quantity, reserved = s.reserved + r.quantity,
       version = s.version + 1, updated_at = now()
FROM per_supply r WHERE s.id = r.supply_id
RETURNING s.id AS supply_id, s.shop_id;

-- name: take_released
-- A late payment accepted by the merchant takes the stock its order had released, if it is still
-- available. Locks the supply rows; `taken` false for each that is not.
WITH r AS (
    SELECT supply_id, quantity FROM order_reservations WHERE order_id = $1 AND status = 'released'
), old AS (
    SELECT s.id, s.quantity, s.reserved, s.status FROM coffee_supplies s
    WHERE s.id IN (SELECT supply_id FROM r) ORDER BY s.id FOR UPDATE
), taken AS (
    UPDATE coffee_supplies s SET quantity = s.quantity - r.quantity, version = s.version + 1, updated_at = now()
    FROM old o JOIN r ON r.supply_id = o.id
    WHERE s.id = o.id AND o.quantity - o.reserved >= r.quantity
    RETURNING s.id, s.quantity, s.reserved, s.reorder_level, s.status
), recorded AS (
    UPDATE order_reservations SET status = 'committed', updated_at = now()
    WHERE order_id = $1 AND supply_id IN (SELECT id FROM taken)
)
SELECT o.id AS supply_id, t.id IS NOT NULL AS taken, o.status AS status_before, t.status AS status_after
FROM old o LEFT JOIN taken t ON t.id = o.id;

-- name: low_stock_rows
-- The supplies (with their product and shop) whose alert fires, for its payload.
SELECT id, shop_id, product_id, quantity, reserved, quantity - reserved AS available, reorder_level
FROM coffee_supplies WHERE id = ANY($1::uuid[]);

