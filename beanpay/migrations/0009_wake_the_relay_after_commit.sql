-- Every transaction that wrote events sent a NOTIFY from this trigger. A NOTIFY in a writing
-- transaction holds a database-wide lock through its commit's WAL flush, so those commits (every
-- order, every settlement) queued behind each other, and a slow fsync stalled them all. The pool now
-- sends the relay's wake-up after commit, on its own (beanpay/wakeups.py); the relay still polls.
DROP TRIGGER event_outbox_notify ON event_outbox;
DROP FUNCTION event_outbox_notify();
