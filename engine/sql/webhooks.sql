-- name: record_deliveries
-- One delivery per event and enabled endpoint of the event's shop that wants its type and existed when
-- it happened, with the traceparent the delivery continues; unique per (endpoint, event), so a
-- redelivered Kafka message makes none twice.
INSERT INTO webhook_deliveries (endpoint_id, event_id, event_type, body, trace_parent)
SELECT e.id, ev.event_id, ev.event_type, ev.body, ev.trace_parent
FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::timestamptz[], $6::text[])
     AS ev(event_id, shop_id, event_type, body, occurred_at, trace_parent)
JOIN webhook_endpoints e ON e.shop_id = ev.shop_id AND e.enabled AND e.created_at <= ev.occurred_at
     AND (ev.event_type = ANY(e.event_types) OR '*' = ANY(e.event_types))
ON CONFLICT (endpoint_id, event_id) DO NOTHING
RETURNING id;

-- name: lease_due
-- Leases due deliveries: their next attempt moves past the request timeout, so a sender that dies
-- mid-request only delays them. Rows another sender holds are skipped (SKIP LOCKED). Whether the endpoint
-- carries refunds' claim tokens is read now, as it is when the request is made.
UPDATE webhook_deliveries d SET attempts = d.attempts + 1, next_attempt_at = now() + $2::interval
FROM webhook_endpoints e
WHERE d.id IN (SELECT id FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= now()
               ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
  AND e.id = d.endpoint_id
RETURNING d.id, d.event_id, d.event_type, d.body, d.attempts, e.url, e.secret, e.enabled, e.refund_claims,
          d.trace_parent;

-- name: record_outcomes
-- A batch's results: succeeded, failed (final), or pending again at the next retry time.
UPDATE webhook_deliveries d SET status = o.status, last_status = o.code, last_error = o.error,
       delivered_at = CASE WHEN o.status = 'succeeded' THEN now() END,
       next_attempt_at = CASE WHEN o.status = 'pending' THEN now() + o.delay ELSE d.next_attempt_at END
FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[], $5::interval[]) AS o(id, status, code, error, delay)
WHERE d.id = o.id;

-- name: record_attempts
-- The attempt log of a batch (one row per request made).
INSERT INTO webhook_attempts (delivery_id, attempt, status_code, error, duration_ms)
SELECT * FROM unnest($1::uuid[], $2::int[], $3::int[], $4::text[], $5::int[]);

-- name: redeliver
-- Queues deliveries again, whatever their state: a fresh schedule, attempts reset (the caller wakes
-- the senders after commit).
UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = now(), delivered_at = NULL
WHERE id = ANY($1::uuid[]) RETURNING id;

-- name: failed_of_endpoint
-- An endpoint's failed deliveries (for `beanpay webhooks redeliver --endpoint`).
SELECT id FROM webhook_deliveries WHERE endpoint_id = $1 AND status = 'failed';

-- name: count_overdue
-- Pending deliveries whose attempt is more than a minute late (the due index): what the overdue alert watches.
SELECT count(*) FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at < now() - interval '1 minute';
