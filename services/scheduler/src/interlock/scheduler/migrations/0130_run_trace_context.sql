-- The run's W3C trace context (the scheduler's span that took its start in): events a
-- timer, an admission or the reconciler publishes later still belong to the run's trace.
ALTER TABLE runs ADD COLUMN traceparent text;
