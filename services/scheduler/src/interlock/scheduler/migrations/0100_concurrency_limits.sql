-- Concurrency limits (a workflow's max_concurrent_runs, a tenant's limit): runs held
-- for a slot, in the order they were requested, and the runs holding one. Only limited runs are here,
-- so runs without limits write nothing more.
CREATE TABLE waiting_runs (
    seq       bigint  GENERATED ALWAYS AS IDENTITY,
    run_id    text    PRIMARY KEY REFERENCES runs ON DELETE CASCADE,
    tenant    text    NOT NULL,
    workflow  text    NOT NULL,
    -- The workflow's max_concurrent_runs; 0: none.
    max_runs  integer NOT NULL,
    -- When the run was requested (its workflow.started's time): starts go in this
    -- order, whatever order the starts arrived in (they travel on several partitions).
    requested_at timestamptz NOT NULL,
    -- Why it waits, as last published (workflow.waiting).
    reason    text    NOT NULL DEFAULT ''
);
CREATE INDEX waiting_runs_order ON waiting_runs (tenant, requested_at, seq);

CREATE TABLE active_runs (
    run_id    text PRIMARY KEY REFERENCES runs ON DELETE CASCADE,
    tenant    text NOT NULL,
    workflow  text NOT NULL
);
CREATE INDEX active_runs_workflow ON active_runs (tenant, workflow);
