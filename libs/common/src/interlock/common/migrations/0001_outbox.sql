-- Transactional outbox (interlock.common.outbox): events committed in the same
-- transaction as the state change that caused them. OutboxRelay publishes them to
-- Kafka in batches, oldest first, and deletes them once the broker acknowledged.
CREATE TABLE interlock_outbox (
    seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id   text        NOT NULL,
    -- Event type name, i.e. the topic without kafka_topic_prefix.
    topic      text        NOT NULL,
    key        bytea,
    -- The record headers as a JSON array of [name, value] pairs, in order.
    headers    jsonb       NOT NULL,
    value      bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
