-- A task's row is rewritten soon after its insert (scheduled, then started, then
-- finished). Room left on each page lets those rewrites stay on the page (HOT updates),
-- so they add no primary key entry; with full pages about two in three did.
ALTER TABLE run_tasks SET (fillfactor = 70);
