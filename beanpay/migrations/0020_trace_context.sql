-- 0020 trace context: the W3C traceparent of the span that caused a row, so a trace follows an order from
-- the API through the outbox, Kafka and the engine's settlement to the merchant's webhook. Nullable
-- columns only: the previous release writes rows without them and reads past them (a rolling deploy).
ALTER TABLE coffee_orders ADD COLUMN trace_parent varchar(55);
ALTER TABLE event_outbox ADD COLUMN trace_parent varchar(55);
ALTER TABLE webhook_deliveries ADD COLUMN trace_parent varchar(55);
