-- name: insert
-- A new shop.
INSERT INTO coffee_shops (name, address, latitude, longitude, phone, email, currency, opening_hours, status)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
RETURNING id, name, address, latitude::float8 AS latitude, longitude::float8 AS longitude, phone, email, currency,
          opening_hours::text AS opening_hours, status, version, created_at, updated_at;

-- name: fetch
-- A shop that is not deleted.
SELECT id, name, address, latitude::float8 AS latitude, longitude::float8 AS longitude, phone, email, currency,
       opening_hours::text AS opening_hours, status, version, created_at, updated_at
FROM coffee_shops WHERE id = $1 AND status <> 'deleted';

-- name: lock
-- A shop that is not deleted, locked (FOR UPDATE) for a change.
SELECT id, name, address, latitude::float8 AS latitude, longitude::float8 AS longitude, phone, email, currency,
       opening_hours::text AS opening_hours, status, version, created_at, updated_at
FROM coffee_shops WHERE id = $1 AND status <> 'deleted' FOR UPDATE;

-- name: page
-- Shops after the keyset cursor ($2, $3; NULL for the first page) in status $4 (NULL: any but deleted),
-- among the shops $5 (NULL: any).
SELECT id, name, address, latitude::float8 AS latitude, longitude::float8 AS longitude, phone, email, currency,
       opening_hours::text AS opening_hours, status, version, created_at, updated_at
FROM coffee_shops
WHERE ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3::uuid))
  AND CASE WHEN $4::text IS NULL THEN status <> 'deleted' ELSE status = $4 END
  AND ($5::uuid[] IS NULL OR id = ANY ($5))
ORDER BY created_at, id LIMIT $1;

-- name: near
-- Active shops within $4 km of ($1, $2), nearest first, after the cursor ($5 km, $6 id). A bounding box
-- ($3 degrees of latitude) uses the (latitude, longitude) index; the haversine distance then filters.
SELECT * FROM (
    SELECT id, name, address, latitude::float8 AS latitude, longitude::float8 AS longitude, phone, email, currency,
           opening_hours::text AS opening_hours, status, version, created_at, updated_at,
           2 * $7 * asin(sqrt(power(sin(radians(latitude::float8 - $1) / 2), 2)
               + cos(radians($1)) * cos(radians(latitude::float8)) * power(sin(radians(longitude::float8 - $2) / 2), 2)))
               AS distance_km
    FROM coffee_shops
    WHERE status = 'active' AND latitude BETWEEN $1 - $3 AND $1 + $3
) s
WHERE distance_km <= $4 AND (distance_km, id) > ($5, $6)
ORDER BY distance_km, id LIMIT $8;

-- name: update
-- Writes a shop's fields (the patch merged into the locked row), bumping its version.
UPDATE coffee_shops SET name = $2, address = $3, latitude = $4, longitude = $5, phone = $6, email = $7,
       opening_hours = $8, status = $9, version = version + 1, updated_at = now()
WHERE id = $1
RETURNING id, name, address, latitude::float8 AS latitude, longitude::float8 AS longitude, phone, email, currency,
          opening_hours::text AS opening_hours, status, version, created_at, updated_at;

-- name: delete
-- A shop is deleted softly: kept for its orders' history, hidden from reads.
UPDATE coffee_shops SET status = 'deleted', version = version + 1, updated_at = now() WHERE id = $1;
