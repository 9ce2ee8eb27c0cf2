-- Events the scheduler refused to apply, kept with the reason for an operator to see:
-- today, events that name a run of another tenant than their own. The reconciler
-- forgets them after the inbox's retention.
CREATE TABLE rejected_events (
    event_id     text        PRIMARY KEY,
    event_type   text        NOT NULL,
    run_id       text        NOT NULL,
    event_tenant text        NOT NULL,
    run_tenant   text        NOT NULL,
    reason       text        NOT NULL,
    payload      bytea       NOT NULL,
    rejected_at  timestamptz NOT NULL
);

CREATE INDEX rejected_events_rejected_at ON rejected_events (rejected_at);
