"""The reconciler: repairs what lost or early events leave behind, and prunes old rows."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import asyncpg

from interlock.common import inbox
from interlock.scheduler import store
from interlock.scheduler.domain.queue import QueueProgress
from interlock.scheduler.handlers import Clock, utc_now

_log = logging.getLogger(__name__)


class Reconciler:
    """Re-publishes ``task.scheduled`` for tasks whose event was lost.

    A worker that never saw the event (a broker that lost its data, a lost record)
    then gets it again; the attempt and its idempotency key stay the same. A task that
    merely waits in a long queue is not lost: with ``progress`` only tasks the
    workers' pick-ups overtook by ``after_s`` (or that waited ``after_s`` while no
    worker did anything) are re-published (:mod:`interlock.scheduler.domain.queue`). It also
    forgets consumed event ids and parked controls once they are old enough.

    Args:
        pool: The scheduler's pool.
        after_s: How long a task may wait in ``scheduled`` before it is re-published.
            Default: 30 s.
        batch_size: Most tasks one pass re-publishes. Default: 500.
        clock: Source of the current time. Default: UTC now.
        progress: What workers were seen picking up. Default: none (every task
            waiting longer than ``after_s`` is re-published).
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        after_s: float = 30.0,
        batch_size: int = 500,
        clock: Clock = utc_now,
        progress: QueueProgress | None = None,
    ) -> None:
        self._progress = progress
        self._pool = pool
        self._after = timedelta(seconds=after_s)
        self._batch_size = batch_size
        self._clock = clock

    async def prune_inbox(self, older_than: timedelta) -> int:
        """Forget consumed event ids older than ``older_than``.

        Returns:
            How many ids were forgotten.
        """
        async with self._pool.acquire() as conn:
            return await inbox.prune(conn, older_than=older_than)

    async def prune_parked_controls(self, older_than: timedelta) -> int:
        """Drop controls parked longer than ``older_than``: their run never started.

        A control waits for its run's ``workflow.started`` (see
        :mod:`interlock.scheduler.handlers`); one whose start has not come after the
        workflow service gave up re-publishing it never will, and would stay forever.

        Returns:
            How many controls were dropped.
        """
        async with self._pool.acquire() as conn:
            dropped = await store.prune_parked_controls(conn, self._clock() - older_than)
        if dropped:
            _log.warning("dropped controls whose run never started", extra={"controls": dropped})
        return dropped

    async def reconcile_once(self) -> int:
        """Re-publish one batch of stuck tasks.

        Returns:
            How many were re-published.
        """
        async with self._pool.acquire() as conn, conn.transaction():
            now = self._clock()
            cutoff: datetime | None = now - self._after
            if self._progress is not None:
                cutoff = self._progress.lost_before(now, self._after)
            if cutoff is None:
                return 0
            stuck = await store.stuck_scheduled(conn, cutoff, self._batch_size)
            if not stuck:
                return 0
            runs = await store.load_runs(conn, {run_id for run_id, _ in stuck}, skip_locked=True)
            count = sum(
                runs[run_id].republish(task_id, now) for run_id, task_id in stuck if run_id in runs
            )
            await store.save_runs(conn, list(runs.values()), now)
        if count:
            _log.info("re-published stuck task.scheduled events", extra={"tasks": count})
        return count
