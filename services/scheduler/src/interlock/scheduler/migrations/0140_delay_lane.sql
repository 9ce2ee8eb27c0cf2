-- A delay is dispatched on no lane (''): the reconciler's queries of tasks waiting for
-- a worker leave delays out by this column instead of looking up each task's delay
-- timer. Pending delays are the ones with a delay timer; a delay that ended before this
-- migration keeps its old lane, which matters only if a retry sets it again (it is then
-- counted as waiting in that lane until it fires; it is never dispatched).
UPDATE tasks t SET lane = ''
FROM timers d
WHERE d.run_id = t.run_id AND d.task_id = t.task_id AND d.kind = 'delay';
