-- The reconciler re-publishes workflow.started for runs still pending after a grace
-- period (the broker may have lost the event), with exponential backoff, a bounded
-- number of times. The scheduler ignores a start for a run it already holds.
ALTER TABLE runs
    ADD COLUMN start_republished_at timestamptz,
    ADD COLUMN start_republishes    integer NOT NULL DEFAULT 0;
CREATE INDEX runs_pending ON runs (created_at) WHERE status = 'pending';
