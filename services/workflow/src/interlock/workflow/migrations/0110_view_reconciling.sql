-- The view reconciler asks the scheduler about runs whose view is unfinished and quiet,
-- or finished with a task not (its events may have been lost with the broker), and
-- remembers when it last asked about each run.
ALTER TABLE runs ADD COLUMN view_checked_at timestamptz;
CREATE INDEX runs_unfinished ON runs (updated_at) WHERE status IN ('pending', 'running', 'paused');
CREATE INDEX runs_by_finish ON runs (finished_at) WHERE finished_at IS NOT NULL;
