-- name: claim_batch
-- The oldest events (every row is unpublished: published ones are deleted), skipping rows another
-- relay holds (FOR UPDATE SKIP LOCKED) and keys another relay is publishing (a transaction-scoped
-- advisory lock per aggregate key).
SELECT id, event_id, event_type, topic, aggregate_type, aggregate_id, payload::text AS payload, occurred_at,
       trace_parent
FROM event_outbox
WHERE pg_try_advisory_xact_lock(hashtext('beanpay.outbox'), hashtext(aggregate_id))
ORDER BY id
LIMIT $1
FOR UPDATE SKIP LOCKED;

-- name: unpublished_before
-- Per key, how many unpublished events there are up to the last one claimed (see Relay._key_prefixes).
SELECT o.aggregate_id, count(*) AS n
FROM event_outbox o JOIN unnest($1::text[], $2::bigint[]) AS c(key, last_id) ON o.aggregate_id = c.key
WHERE o.id <= c.last_id
GROUP BY o.aggregate_id;

-- name: mark_published
-- Events acknowledged by Kafka leave the outbox (rows locked by claim_batch); Kafka keeps them.
DELETE FROM event_outbox WHERE id = ANY($1::bigint[]);

-- name: mark_failed
-- Events Kafka refused; they stay unpublished and are retried.
UPDATE event_outbox SET attempts = attempts + 1, last_error = $2 WHERE id = ANY($1::bigint[]);
