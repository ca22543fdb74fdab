-- name: insert_events
-- Queue events in list order (ids ascend, so each key's order holds), each with the traceparent it
-- continues; the relay is woken after commit.
INSERT INTO event_outbox (event_id, event_type, topic, aggregate_type, aggregate_id, payload, trace_parent)
SELECT event_id, event_type, topic, aggregate_type, aggregate_id, payload, trace_parent
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::jsonb[], $7::text[])
     WITH ORDINALITY AS e(event_id, event_type, topic, aggregate_type, aggregate_id, payload, trace_parent, n)
ORDER BY n;
