-- name: lock
-- One migrator at a time across processes: a session advisory lock, held until unlock.
SELECT pg_advisory_lock($1);

-- name: unlock
-- Releases the migrator's advisory lock.
SELECT pg_advisory_unlock($1);

-- name: create_ledger
-- The table recording applied migrations (created by the first run).
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now());

-- name: applied
-- Migrations already applied, with the checksum of the file as it was then.
SELECT version, name, checksum FROM schema_migrations ORDER BY version;

-- name: record
-- Records one applied migration (in the migration's own transaction when it has one).
INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3);
