-- name: facts
-- What the customer of each order is told and how to reach them: the shop, the payment's amounts, the
-- email a guest gave with the invoice, their preferences and the live push subscriptions that follow the
-- order: the customer's devices, and devices subscribed to this one order with its checkout token (a
-- device that is both is told once).
SELECT o.id AS order_id, o.user_id, s.name AS shop, p.crypto_currency AS asset, p.decimals,
       p.crypto_amount AS amount, p.amount_received AS received, i.buyer_email, np.email AS preferred_email,
       coalesce(np.language, 'en') AS language, coalesce(np.email_enabled, true) AS email_on,
       coalesce(np.push_enabled, true) AS push_on, coalesce(np.in_app_enabled, true) AS in_app_on,
       coalesce((SELECT array_agg(d.id ORDER BY d.created_at) FROM (
                     SELECT DISTINCT ON (f.endpoint) f.id, f.created_at FROM (
                         SELECT ps.id, ps.endpoint, ps.created_at, 0 AS rank FROM push_subscriptions ps
                         WHERE ps.user_id = o.user_id AND ps.gone_at IS NULL
                         UNION ALL
                         SELECT op.id, op.endpoint, op.created_at, 1 FROM order_push_subscriptions op
                         WHERE op.order_id = o.id AND op.gone_at IS NULL) f
                     ORDER BY f.endpoint, f.rank, f.created_at) d), '{}'::uuid[]) AS subscriptions
FROM coffee_orders o
JOIN coffee_shops s ON s.id = o.shop_id
JOIN crypto_payments p ON p.order_id = o.id
LEFT JOIN invoices i ON i.order_id = o.id
LEFT JOIN notification_preferences np ON np.user_id = o.user_id
WHERE o.id = ANY($1::uuid[]);

-- name: record
-- Notifications to make, each once per event, channel and recipient: rows already made (a redelivered
-- event) are left alone, and only the new ones are returned. In-app ones are delivered as they are made.
INSERT INTO notifications (id, event_id, event_type, channel, user_id, recipient, order_id, title, body, link,
                           status, delivered_at, created_at)
SELECT r.id, r.event_id, r.event_type, r.channel, r.user_id, r.recipient, r.order_id, r.title, r.body, r.link,
       CASE WHEN r.channel = 'in_app' THEN 'delivered' ELSE 'pending' END,
       CASE WHEN r.channel = 'in_app' THEN now() END,
       clock_timestamp()  -- per row, in the events' order: one batch's notifications to a device go in that order
FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::uuid[], $6::text[], $7::uuid[], $8::text[],
            $9::text[], $10::text[])
     AS r (id, event_id, event_type, channel, user_id, recipient, order_id, title, body, link)
ON CONFLICT (event_id, channel, recipient) DO NOTHING
RETURNING id, event_id, channel, user_id, order_id, status;

-- name: lease_due
-- Due notifications for this sender: each is leased (its next attempt moved past the send timeout, its
-- attempt counted) so another sender skips it; a sender that dies only delays its leases.
WITH due AS (
    SELECT id FROM notifications WHERE status = 'pending' AND next_attempt_at <= now()
    ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED
)
UPDATE notifications n SET next_attempt_at = now() + $2::interval, attempts = n.attempts + 1
FROM due WHERE n.id = due.id
RETURNING n.id, n.event_id, n.channel, n.user_id, n.order_id, n.recipient, n.title, n.body, n.link, n.attempts,
          n.created_at;

-- name: subscriptions
-- The push subscriptions these notifications go to (a person's devices, or devices following one order).
SELECT id, endpoint, p256dh, auth FROM push_subscriptions WHERE id = ANY($1::uuid[])
UNION ALL
SELECT id, endpoint, p256dh, auth FROM order_push_subscriptions WHERE id = ANY($1::uuid[]);

-- name: mark_sent
-- Handed to the channel (the SMTP server or the push service accepted it).
UPDATE notifications SET status = 'sent', sent_at = now(), last_error = NULL
WHERE id = $1 AND status = 'pending' RETURNING id;

-- name: mark_retry
-- A failed attempt: tried again after $2.
UPDATE notifications SET next_attempt_at = now() + $2::interval, last_error = $3 WHERE id = $1 AND status = 'pending';

-- name: mark_failed
-- Given up on: attempts used up, or refused for good.
UPDATE notifications SET status = 'failed', last_error = $2 WHERE id = $1 AND status = 'pending' RETURNING id;

-- name: subscription_gone
-- The push service says the device unsubscribed (404 or 410): no more pushes to it.
WITH person AS (UPDATE push_subscriptions SET gone_at = now() WHERE id = $1 AND gone_at IS NULL)
UPDATE order_push_subscriptions SET gone_at = now() WHERE id = $1 AND gone_at IS NULL;
