-- Inbox (interlock.common.inbox): the event ids each consumer has applied, written in
-- the transaction that applies them, so a redelivered event is applied zero times.
CREATE TABLE interlock_inbox (
    consumer    text        NOT NULL,
    event_id    text        NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

-- For pruning ids older than any redelivery can be.
CREATE INDEX interlock_inbox_received_at ON interlock_inbox (received_at);
