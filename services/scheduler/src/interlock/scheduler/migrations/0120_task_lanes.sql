-- The topic (queue and priority band) a task is dispatched on: the reconciler judges
-- each lane's progress on its own, since workers take higher bands first and serve
-- only their queues.
ALTER TABLE tasks ADD COLUMN lane text NOT NULL DEFAULT 'task.scheduled';
