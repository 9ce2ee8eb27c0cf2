-- A new random value on every write of a run (its row, tasks or timers): a scheduler
-- keeping the run in memory reuses it only while this still matches.
ALTER TABLE runs ADD COLUMN version bigint NOT NULL DEFAULT 0;
