-- 0021 event journal: events the relay published, kept for a while (BEANPAY_OUTBOX_JOURNAL_SECONDS) after
-- they leave the outbox. Kafka is copied to a standby region asynchronously (MirrorMaker 2), so when that
-- region is promoted its Kafka may lack the last events the lost region published; `beanpay outbox replay`
-- puts the journal's recent events back in the outbox to be published again (consumers skip what they
-- already recorded, by event id). Append-only, purged by age: a BRIN index on the time is all it needs.
CREATE TABLE event_journal (
    outbox_id bigint NOT NULL,
    event_id uuid NOT NULL,
    event_type varchar(64) NOT NULL,
    topic varchar(64) NOT NULL,
    aggregate_type varchar(64) NOT NULL,
    aggregate_id text NOT NULL,
    payload jsonb NOT NULL,
    occurred_at timestamptz NOT NULL,
    trace_parent varchar(55),
    published_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX event_journal_published_at ON event_journal USING brin (published_at);
