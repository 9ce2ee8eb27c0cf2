-- Parked events (interlock.common.parking): events that could not be published (outbox
-- relay) or applied (a consumer) and never will be as they are, each with the reason.
-- They leave the queue so everything behind them flows on; an operator lists them.
-- The record is kept as the outbox holds one (topic, key, headers as JSON, value).
CREATE TABLE interlock_parked_events (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    parked_at  timestamptz NOT NULL DEFAULT now(),
    origin     text        NOT NULL,  -- 'outbox' or the consumer group that refused it
    reason     text        NOT NULL,
    event_id   text        NOT NULL,
    tenant     text        NOT NULL,
    run_id     text        NOT NULL,
    topic      text        NOT NULL,
    key        bytea,
    headers    text        NOT NULL,
    value      bytea       NOT NULL
);

CREATE INDEX interlock_parked_events_tenant ON interlock_parked_events (tenant, id);
