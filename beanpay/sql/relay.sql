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
-- Events acknowledged by Kafka leave the outbox (rows locked by claim_batch) for the journal, which keeps
-- them a while for a replay into a promoted region's Kafka (see migration 0021); Kafka keeps them too.
WITH published AS (
    DELETE FROM event_outbox WHERE id = ANY($1::bigint[])
    RETURNING id, event_id, event_type, topic, aggregate_type, aggregate_id, payload, occurred_at, trace_parent)
INSERT INTO event_journal (outbox_id, event_id, event_type, topic, aggregate_type, aggregate_id, payload,
                           occurred_at, trace_parent)
SELECT id, event_id, event_type, topic, aggregate_type, aggregate_id, payload, occurred_at, trace_parent
FROM published;

-- name: purge_journal
-- Journal entries older than the replay window (seconds) go; any relay may run it, at most once a while.
DELETE FROM event_journal WHERE published_at < now() - make_interval(secs => $1);

-- name: replay_journal
-- Events published in the last $1 seconds go back into the outbox under their first ids, so each key's
-- events are published again in their first order, ahead of anything newer of theirs still queued; ones
-- already queued again are skipped. They leave the journal (publishing them writes them back).
WITH replayed AS (
    DELETE FROM event_journal WHERE published_at >= now() - make_interval(secs => $1)
    RETURNING outbox_id, event_id, event_type, topic, aggregate_type, aggregate_id, payload, occurred_at,
              trace_parent)
INSERT INTO event_outbox (id, event_id, event_type, topic, aggregate_type, aggregate_id, payload, occurred_at,
                          trace_parent)
OVERRIDING SYSTEM VALUE
SELECT outbox_id, event_id, event_type, topic, aggregate_type, aggregate_id, payload, occurred_at, trace_parent
FROM replayed ORDER BY outbox_id
ON CONFLICT DO NOTHING;

-- name: mark_failed
-- Events Kafka refused; they stay unpublished and are retried.
UPDATE event_outbox SET attempts = attempts + 1, last_error = $2 WHERE id = ANY($1::bigint[]);
