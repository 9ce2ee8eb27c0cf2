-- Subscriptions: who is told about which events, and how.
CREATE TABLE subscriptions (
    tenant                      text        NOT NULL,
    id                          uuid        NOT NULL,
    name                        text        NOT NULL,
    -- 'webhook' or 'email'.
    channel                     text        NOT NULL,
    -- A URL (a JSON string) for a webhook, a JSON array of addresses for email.
    target                      jsonb       NOT NULL,
    events                      text[]      NOT NULL,
    filter_workflows            text[]      NOT NULL DEFAULT '{}',
    filter_workflow_prefix      text        NOT NULL DEFAULT '',
    filter_labels               jsonb       NOT NULL DEFAULT '{}',
    enabled                     boolean     NOT NULL DEFAULT true,
    -- Why the service disabled it (410 Gone, too many failures); NULL when a user did.
    disabled_reason             text,
    consecutive_failures        integer     NOT NULL DEFAULT 0,
    -- Webhooks: the whsec_ signing secret, and the one it replaced while that one
    -- still signs (its grace period).
    secret                      text,
    previous_secret             text,
    previous_secret_expires_at  timestamptz,
    created_by                  text        NOT NULL,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, id)
);
CREATE INDEX subscriptions_listing ON subscriptions (tenant, created_at, id);

-- Runs seen starting (workflow.started): what later events about them do not carry.
CREATE TABLE runs (
    tenant      text        NOT NULL,
    run_id      text        NOT NULL,
    workflow    text        NOT NULL,
    version     integer     NOT NULL,
    -- The workflow's labels, for label filters.
    labels      jsonb       NOT NULL DEFAULT '{}',
    started_at  timestamptz NOT NULL,
    seen_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, run_id)
);

-- One delivery per (event, subscription), written with the event's inbox record.
CREATE TABLE deliveries (
    id               uuid        PRIMARY KEY,
    tenant           text        NOT NULL,
    subscription_id  uuid        NOT NULL,
    -- The triggering event's id (or 'test:<uuid>' for a test message).
    event_id         text        NOT NULL,
    -- The webhook-id header: the same on every attempt of this delivery.
    message_id       text        NOT NULL,
    event_type       text        NOT NULL,
    run_id           text,
    -- The {type, timestamp, data} body.
    message          jsonb       NOT NULL,
    -- 'pending', 'succeeded' or 'failed'.
    status           text        NOT NULL DEFAULT 'pending',
    attempts         integer     NOT NULL DEFAULT 0,
    -- Attempts made before the latest redelivery: the retry schedule starts over there.
    attempts_before_redelivery integer NOT NULL DEFAULT 0,
    -- Pending: when the next attempt is due; while an attempt is in flight, when its
    -- lease ends (another instance takes it over then).
    next_attempt_at  timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    UNIQUE (subscription_id, event_id),
    FOREIGN KEY (tenant, subscription_id) REFERENCES subscriptions (tenant, id) ON DELETE CASCADE
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_listing ON deliveries (tenant, created_at DESC, id DESC);
CREATE INDEX deliveries_by_subscription ON deliveries (tenant, subscription_id, created_at DESC);
CREATE INDEX deliveries_by_run ON deliveries (tenant, run_id, created_at DESC);

-- Every attempt of every delivery, as it ended.
CREATE TABLE delivery_attempts (
    delivery_id       uuid        NOT NULL REFERENCES deliveries ON DELETE CASCADE,
    number            integer     NOT NULL,
    started_at        timestamptz NOT NULL,
    latency_ms        integer     NOT NULL,
    status_code       integer,
    error             text        NOT NULL DEFAULT '',
    response_excerpt  text        NOT NULL DEFAULT '',
    PRIMARY KEY (delivery_id, number)
);
