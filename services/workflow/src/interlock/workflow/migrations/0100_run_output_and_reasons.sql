-- The run's output (from workflow.completed), why a pending run waits (workflow.waiting:
-- a concurrency limit), and why a task was skipped or cancelled (task.settled).
ALTER TABLE runs
    ADD COLUMN output        jsonb,
    ADD COLUMN status_reason text;
ALTER TABLE run_tasks ADD COLUMN reason text;
