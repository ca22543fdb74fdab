-- 0012 what a shop charges is the shop's: a menu entry keeps its own copy of the product's options
-- and their price deltas, taken when the shop lists (or re-lists) the product. Products are shared
-- between shops and only their creator edits them, so prices read through the product let one shop's
-- merchant change what another shop charges (an option delta of -3.99 made a 4.00 drink cost 0.01).
ALTER TABLE shop_products ADD COLUMN customizations jsonb;
UPDATE shop_products sp SET customizations = p.customizations FROM products p WHERE p.id = sp.product_id;
ALTER TABLE shop_products ALTER COLUMN customizations SET NOT NULL;
