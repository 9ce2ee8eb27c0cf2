-- Control requests (cancel, pause, ...) that arrived before their run's
-- workflow.started: the two travel on different topics, so nothing orders them.
-- They wait here and are applied right after the run starts.
CREATE TABLE parked_controls (
    seq        bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id   text        NOT NULL UNIQUE,
    run_id     text        NOT NULL,
    tenant     text        NOT NULL,
    payload    bytea       NOT NULL,
    parked_at  timestamptz NOT NULL
);

CREATE INDEX parked_controls_run ON parked_controls (run_id);
