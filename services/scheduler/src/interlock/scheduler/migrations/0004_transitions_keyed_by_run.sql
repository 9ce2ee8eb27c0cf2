-- Transitions are only ever read per run (WatchRun, tests): one index keyed by run
-- serves every read, so a recorded transition writes one index entry instead of two
-- (the identity column keeps ids unique without an index of their own).
ALTER TABLE transitions DROP CONSTRAINT transitions_pkey;
DROP INDEX transitions_run;
ALTER TABLE transitions ADD PRIMARY KEY (run_id, id);
