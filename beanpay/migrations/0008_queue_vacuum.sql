-- 0008: the work queues are vacuumed as soon as a few hundred rows died, not after 20% of the table
-- did. payment_queue and event_outbox are inserted and deleted all day; until autovacuum runs,
-- every claim (ORDER BY id ... FOR UPDATE SKIP LOCKED) walks past the dead rows (25 ms a claim
-- under the engine benchmark, the most expensive statement of the run).
ALTER TABLE payment_queue SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 500,
                               autovacuum_vacuum_cost_delay = 0, autovacuum_analyze_scale_factor = 0,
                               autovacuum_analyze_threshold = 1000);
ALTER TABLE event_outbox SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000,
                              autovacuum_vacuum_cost_delay = 0, autovacuum_analyze_scale_factor = 0,
                              autovacuum_analyze_threshold = 2000);
