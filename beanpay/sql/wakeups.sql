-- name: notify
-- Wake a channel's listeners. Sent on its own, after the commit of what they should find: a NOTIFY
-- inside a writing transaction holds a database-wide lock through that commit's WAL flush.
SELECT pg_notify($1, '')
