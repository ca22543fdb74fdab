-- 0018 notifications: what customers are told about their orders, payments and refunds, by email,
-- in the app, and by Web Push. One row per event, channel and recipient (the unique key), so a Kafka
-- redelivery or a second notifier process never tells anyone twice; rows are sent with retries on a
-- schedule kept here. People choose their channels in notification_preferences; devices subscribe to
-- push in push_subscriptions (the push service's endpoint and the keys the payload is encrypted to).
CREATE TABLE notification_preferences (
    user_id        uuid PRIMARY KEY,
    email          varchar(320),
    language       varchar(8) NOT NULL DEFAULT 'en',
    email_enabled  boolean NOT NULL DEFAULT true,
    push_enabled   boolean NOT NULL DEFAULT true,
    in_app_enabled boolean NOT NULL DEFAULT true,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE push_subscriptions (
    id         uuid PRIMARY KEY,
    user_id    uuid NOT NULL,
    endpoint   varchar(2000) NOT NULL UNIQUE,
    p256dh     varchar(200) NOT NULL,
    auth       varchar(100) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    gone_at    timestamptz  -- the push service answered 404 or 410: the device unsubscribed
);
CREATE INDEX push_subscriptions_user_idx ON push_subscriptions (user_id) WHERE gone_at IS NULL;

CREATE TABLE notifications (
    id              uuid PRIMARY KEY,
    event_id        uuid NOT NULL,
    event_type      varchar(64) NOT NULL,
    channel         varchar(8) NOT NULL CHECK (channel IN ('email', 'push', 'in_app')),
    user_id         uuid,  -- NULL: a guest known only by the email they gave
    recipient       varchar(2000) NOT NULL,  -- the email address, the push subscription id, or the user id
    order_id        uuid,
    title           varchar(200) NOT NULL,
    body            text NOT NULL,
    link            varchar(2000),
    status          varchar(12) NOT NULL CHECK (status IN ('pending', 'sent', 'delivered', 'failed', 'read')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    delivered_at    timestamptz,
    read_at         timestamptz,
    UNIQUE (event_id, channel, recipient)
);
CREATE INDEX notifications_due_idx ON notifications (next_attempt_at) WHERE status = 'pending';
CREATE INDEX notifications_inbox_idx ON notifications (user_id, created_at DESC) WHERE channel = 'in_app';
