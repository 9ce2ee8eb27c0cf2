-- A sample component's first migration (used by test_postgres.py).
CREATE TABLE things (id bigint PRIMARY KEY, name text NOT NULL);
-- Slow enough that concurrent appliers would overlap without the lock.
SELECT pg_sleep(0.2);
