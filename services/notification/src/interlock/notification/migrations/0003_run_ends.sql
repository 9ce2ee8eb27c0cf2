-- A run's end, seen from its end event or learned from the scheduler: runs without
-- one are asked about (interlock.notification.reconciler), since the broker may have
-- lost their end event.
ALTER TABLE runs ADD COLUMN ended_at timestamptz;
-- When the scheduler was last asked about the run.
ALTER TABLE runs ADD COLUMN checked_at timestamptz;
CREATE INDEX runs_unended ON runs (seen_at) WHERE ended_at IS NULL;

-- One message per run end and subscription: the end event, redelivered or late, and
-- the end learned from the scheduler are the same end.
CREATE UNIQUE INDEX deliveries_one_run_end ON deliveries (subscription_id, run_id)
    WHERE event_type IN ('run.succeeded', 'run.failed', 'run.cancelled');
