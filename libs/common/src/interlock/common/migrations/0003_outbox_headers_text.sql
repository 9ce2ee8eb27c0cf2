-- The relay passes the headers through untouched: text spares PostgreSQL parsing them
-- into jsonb on every insert and printing them back on every drain.
ALTER TABLE interlock_outbox ALTER COLUMN headers TYPE text USING headers::text;
