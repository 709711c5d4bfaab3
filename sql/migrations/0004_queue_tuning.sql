-- The queue table churns: every job is inserted and updated a few times. Vacuum and analyze it
-- far more eagerly than the defaults (20 % / 10 % of the table), so dead rows and stale
-- statistics never steer the claim query off its partial index as completed jobs pile up.
ALTER TABLE chat_webhook_queue SET (
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_analyze_scale_factor = 0.02,
    autovacuum_vacuum_cost_delay = 1
);
ALTER TABLE chat_messages SET (autovacuum_analyze_scale_factor = 0.02);
