-- name: of_user
-- A person's favourites, newest first.
SELECT kind, target_id AS id, created_at FROM user_favorites WHERE user_id = $1 ORDER BY created_at DESC, target_id;

-- name: target_exists
-- Whether a favourite's target is there to be liked: a shop or product that is not deleted.
SELECT CASE $1::text
         WHEN 'shop' THEN EXISTS (SELECT 1 FROM coffee_shops WHERE id = $2 AND status <> 'deleted')
         ELSE EXISTS (SELECT 1 FROM products WHERE id = $2 AND status <> 'deleted') END;

-- name: add
-- A favourite, once (adding it again changes nothing); true when it is new.
INSERT INTO user_favorites (user_id, kind, target_id) VALUES ($1, $2, $3)
ON CONFLICT DO NOTHING RETURNING true;

-- name: remove
-- A favourite taken back; true when there was one (the cache is then invalidated).
DELETE FROM user_favorites WHERE user_id = $1 AND kind = $2 AND target_id = $3 RETURNING true;
