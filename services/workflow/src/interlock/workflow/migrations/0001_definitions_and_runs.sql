-- Workflow definitions: one row per (tenant, name), pointing at its latest version.
CREATE TABLE workflows (
    tenant          text        NOT NULL,
    name            text        NOT NULL,
    latest_version  integer     NOT NULL,
    description     text        NOT NULL DEFAULT '',
    -- The latest version's labels, copied here for filtering (labels @> '{"k": "v"}').
    labels          jsonb       NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    -- Set by DELETE: hidden from lists, no new runs; history and runs stay.
    archived_at     timestamptz,
    PRIMARY KEY (tenant, name)
);
CREATE INDEX workflows_labels ON workflows USING gin (labels jsonb_path_ops);

-- Immutable versions. A PUT whose document hashes like the latest adds none.
CREATE TABLE workflow_versions (
    tenant        text        NOT NULL,
    name          text        NOT NULL,
    version       integer     NOT NULL,
    -- SHA-256 of the document's canonical JSON.
    content_hash  text        NOT NULL,
    -- The document as the user wrote it (parsed YAML or JSON).
    document      jsonb       NOT NULL,
    -- interlock.events.v1.WorkflowDefinition, normalized, version set.
    definition    bytea       NOT NULL,
    input_schema  jsonb,
    task_ids      text[]      NOT NULL,
    labels        jsonb       NOT NULL DEFAULT '{}',
    created_by    text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, name, version),
    FOREIGN KEY (tenant, name) REFERENCES workflows (tenant, name)
);

-- Runs, pinned to the version they started with.
CREATE TABLE runs (
    id               uuid        PRIMARY KEY,
    tenant           text        NOT NULL,
    workflow         text        NOT NULL,
    version          integer     NOT NULL,
    status           text        NOT NULL,
    input            jsonb       NOT NULL,
    -- Idempotency-Key of the start request and a digest of that request: the same key
    -- with another request is refused. Unique per tenant (the index below), so
    -- concurrent starts with one key create one run.
    idempotency_key  text,
    request_hash     text,
    created_by       text        NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    FOREIGN KEY (tenant, workflow, version) REFERENCES workflow_versions (tenant, name, version)
);
CREATE UNIQUE INDEX runs_idempotency_key ON runs (tenant, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
-- Keyset pagination, newest first: (created_at, id) is unique and totally ordered.
CREATE INDEX runs_by_tenant ON runs (tenant, created_at DESC, id DESC);
CREATE INDEX runs_by_workflow ON runs (tenant, workflow, created_at DESC, id DESC);
CREATE INDEX runs_by_status ON runs (tenant, status, created_at DESC, id DESC);

-- Task progress per run, projected from task events (absent row = pending).
CREATE TABLE run_tasks (
    run_id        uuid        NOT NULL REFERENCES runs (id),
    task_id       text        NOT NULL,
    status        text        NOT NULL,
    attempts      integer     NOT NULL,
    scheduled_at  timestamptz,
    started_at    timestamptz,
    finished_at   timestamptz,
    output        jsonb,
    error         jsonb,
    PRIMARY KEY (run_id, task_id)
);
