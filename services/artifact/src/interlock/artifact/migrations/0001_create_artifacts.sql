-- Artifact records; the bytes are in S3 under object_key.
-- state: 'pending' from the row's creation until the bytes are stored and verified,
-- then 'available'. A pending row whose upload_deadline passed is swept with its object.
CREATE TABLE artifacts (
    id              uuid PRIMARY KEY,
    tenant          text        NOT NULL,
    run_id          uuid        NOT NULL,
    task_id         text,
    attempt         integer,
    name            text        NOT NULL,
    content_type    text        NOT NULL,
    size_bytes      bigint      NOT NULL DEFAULT 0,
    sha256          text,
    labels          jsonb       NOT NULL DEFAULT '{}',
    object_key      text        NOT NULL UNIQUE,
    state           text        NOT NULL CHECK (state IN ('pending', 'available')),
    created_by      text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    available_at    timestamptz,
    expires_at      timestamptz NOT NULL,
    upload_deadline timestamptz NOT NULL
);

-- Lists: newest first, by tenant, optionally by run.
CREATE INDEX artifacts_by_tenant ON artifacts (tenant, created_at DESC, id DESC);
CREATE INDEX artifacts_by_run ON artifacts (tenant, run_id, created_at DESC, id DESC);
-- The collector and the sweeper.
CREATE INDEX artifacts_by_expiry ON artifacts (expires_at);
CREATE INDEX artifacts_pending ON artifacts (upload_deadline) WHERE state = 'pending';
