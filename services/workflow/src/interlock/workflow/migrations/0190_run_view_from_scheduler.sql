-- Issue 19: the run view takes a run's tasks from the scheduler when the run is read,
-- instead of folding every task event into run_tasks; the finished runs whose view
-- showed a task unfinished are no longer looked for (runs_by_finish served that).
DROP TABLE run_tasks;
DROP INDEX runs_by_finish;
-- Why a scheduled attempt waits for a worker of its queue (workflow.waiting with tasks):
-- shown while the scheduler still holds that attempt scheduled. Latest word per task.
CREATE TABLE task_waits (
    run_id   uuid    NOT NULL REFERENCES runs (id),
    task_id  text    NOT NULL,
    attempt  integer NOT NULL,
    reason   text    NOT NULL,
    PRIMARY KEY (run_id, task_id)
);
-- The scheduler's time of the latest workflow.running or workflow.waiting applied to the
-- run: an older one, overtaken on its way (they travel on separate topics), changes
-- nothing.
ALTER TABLE runs ADD COLUMN run_event_at timestamptz;
