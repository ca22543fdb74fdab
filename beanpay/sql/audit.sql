-- name: insert_entries
-- Audit rows (who, what, before, after) written in the caller's transaction; locks nothing.
INSERT INTO audit_log (actor_id, actor_role, action, entity_type, entity_id, before, after, request_id)
SELECT $1, $2, e.action, e.entity_type, e.entity_id, e.before, e.after, $3
FROM unnest($4::text[], $5::text[], $6::text[], $7::jsonb[], $8::jsonb[])
     AS e(action, entity_type, entity_id, before, after);

-- name: insert_client_entries
-- Audit rows as insert_entries, with the request id the client sent ($9), kept apart from the server's ($3).
INSERT INTO audit_log (actor_id, actor_role, action, entity_type, entity_id, before, after, request_id,
                       client_request_id)
SELECT $1, $2, e.action, e.entity_type, e.entity_id, e.before, e.after, $3, $9
FROM unnest($4::text[], $5::text[], $6::text[], $7::jsonb[], $8::jsonb[])
     AS e(action, entity_type, entity_id, before, after);
