-- Runs the scheduler drives; the definition is the WorkflowStarted message as received.
CREATE TABLE runs (
    run_id      text        PRIMARY KEY,
    tenant      text        NOT NULL,
    status      text        NOT NULL,
    started     bytea       NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    ended_at    timestamptz
);
CREATE INDEX runs_tenant ON runs (tenant, run_id);

-- One row per task of a run, compensations ("compensate:<id>") included.
CREATE TABLE tasks (
    run_id          text        NOT NULL REFERENCES runs ON DELETE CASCADE,
    task_id         text        NOT NULL,
    status          text        NOT NULL,
    attempt         integer     NOT NULL,
    attempt_floor   integer     NOT NULL,
    scheduled_at    timestamptz,
    started_at      timestamptz,
    ended_at        timestamptz,
    params_json     bytea,
    output_json     bytea,
    error_type      text,
    error_message   text,
    error_retryable boolean,
    error_traceback text,
    worker_id       text        NOT NULL DEFAULT '',
    depends_on      text[],
    PRIMARY KEY (run_id, task_id)
);
-- The reconciler looks for tasks waiting in "scheduled" too long.
CREATE INDEX tasks_scheduled ON tasks (scheduled_at) WHERE status = 'scheduled';

-- Every state change of runs (task_id NULL) and tasks.
CREATE TABLE transitions (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id      text        NOT NULL,
    task_id     text,
    from_status text        NOT NULL,
    to_status   text        NOT NULL,
    attempt     integer     NOT NULL,
    at          timestamptz NOT NULL
);
CREATE INDEX transitions_run ON transitions (run_id, id);

-- Durable timers: at most one per task and kind; claimed by due_at.
CREATE TABLE timers (
    run_id  text        NOT NULL REFERENCES runs ON DELETE CASCADE,
    task_id text        NOT NULL,
    kind    text        NOT NULL,
    attempt integer     NOT NULL,
    due_at  timestamptz NOT NULL,
    PRIMARY KEY (run_id, task_id, kind)
);
CREATE INDEX timers_due ON timers (due_at);

-- Tasks parked after their last attempt failed.
CREATE TABLE dead_letters (
    id              uuid        PRIMARY KEY,
    tenant          text        NOT NULL,
    run_id          text        NOT NULL,
    task_id         text        NOT NULL,
    task_type       text        NOT NULL,
    params_json     bytea       NOT NULL,
    attempts        integer     NOT NULL,
    error_type      text        NOT NULL,
    error_message   text        NOT NULL,
    error_traceback text        NOT NULL,
    created_at      timestamptz NOT NULL
);
CREATE INDEX dead_letters_tenant ON dead_letters (tenant, created_at DESC, id DESC);
