-- name: inbox
-- A person's in-app notifications, newest first, after the keyset cursor ($2, $3), unread only if $4.
SELECT id, event_type, order_id, title, body, link, status, created_at, read_at
FROM notifications
WHERE user_id = $1 AND channel = 'in_app' AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3::uuid))
  AND (NOT $4::bool OR status <> 'read')
ORDER BY created_at DESC, id DESC LIMIT $5;

-- name: mark_read
-- One of my in-app notifications read (once: reading it again changes nothing and returns no row).
UPDATE notifications SET status = 'read', read_at = now()
WHERE id = $1 AND user_id = $2 AND channel = 'in_app' AND status <> 'read'
RETURNING id, event_id, channel, user_id, order_id, status;

-- name: one
-- One of my in-app notifications.
SELECT id, event_type, order_id, title, body, link, status, created_at, read_at
FROM notifications WHERE id = $1 AND user_id = $2 AND channel = 'in_app';

-- name: preferences
-- A person's notification preferences (no row: the defaults).
SELECT email, language, email_enabled, push_enabled, in_app_enabled, updated_at
FROM notification_preferences WHERE user_id = $1;

-- name: save_preferences
-- A person's notification preferences, replaced.
INSERT INTO notification_preferences (user_id, email, language, email_enabled, push_enabled, in_app_enabled)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (user_id) DO UPDATE SET email = excluded.email, language = excluded.language,
    email_enabled = excluded.email_enabled, push_enabled = excluded.push_enabled,
    in_app_enabled = excluded.in_app_enabled, updated_at = now()
RETURNING email, language, email_enabled, push_enabled, in_app_enabled, updated_at;

-- name: subscribe
-- A device's push subscription, for this person: their own device subscribing again replaces its keys; a
-- device someone else holds is left as it is (no row returned: refused), unless the push service said it
-- is gone.
INSERT INTO push_subscriptions (id, user_id, endpoint, p256dh, auth) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (endpoint) DO UPDATE SET user_id = excluded.user_id, p256dh = excluded.p256dh, auth = excluded.auth,
    gone_at = NULL
WHERE push_subscriptions.user_id = excluded.user_id OR push_subscriptions.gone_at IS NOT NULL
RETURNING id, endpoint, created_at;

-- name: subscribe_order
-- A device's push subscription for one order (made with its checkout token). The same device again: the
-- row as it is; with other keys (which would re-key that device) no row is returned: refused.
INSERT INTO order_push_subscriptions (id, order_id, endpoint, p256dh, auth) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (order_id, endpoint) DO UPDATE SET gone_at = NULL
WHERE order_push_subscriptions.p256dh = excluded.p256dh AND order_push_subscriptions.auth = excluded.auth
RETURNING id, endpoint, created_at;

-- name: unsubscribe
-- One of my push subscriptions ended.
UPDATE push_subscriptions SET gone_at = now() WHERE id = $1 AND user_id = $2 AND gone_at IS NULL RETURNING id;
