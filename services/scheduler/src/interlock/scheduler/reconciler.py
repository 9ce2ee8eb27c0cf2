"""The reconciler: repairs what lost or early events leave behind, and prunes old rows."""

from __future__ import annotations

import logging
from datetime import timedelta

from interlock.scheduler.metrics import DEAD_LETTERS, LANE_IDLE, TASKS_WAITING, TIMERS_DUE
from interlock.scheduler.service import SchedulerService

_log = logging.getLogger(__name__)


class Reconciler:
    """Re-publishes ``task.scheduled`` for tasks whose event was lost.

    A worker that never saw the event (a broker that lost its data, a lost record)
    then gets it again; the attempt and its idempotency key stay the same. A task that
    merely waits in a long queue is not lost: only tasks the workers' pick-ups overtook
    by ``after_s`` (or that waited ``after_s`` while no worker did anything) are
    re-published (:mod:`interlock.scheduler.domain.queue`). It also
    forgets consumed event ids, parked controls and rejected events once they are old
    enough.

    Args:
        service: The scheduler's use cases.
        after_s: How far the workers' pick-ups may overtake a task still in ``scheduled``
            before it counts as lost. Default: 30 s.
        batch_size: Most tasks one pass re-publishes. Default: 500.
        unserved_after_s: How long no worker of a queue took or ran a task, while its
            tasks wait, before the run views say they wait for a worker of it.
            Default: 10 s.
    """

    def __init__(
        self,
        service: SchedulerService,
        *,
        after_s: float = 30.0,
        batch_size: int = 500,
        unserved_after_s: float = 10.0,
    ) -> None:
        self._service = service
        self._after = timedelta(seconds=after_s)
        self._unserved_after = timedelta(seconds=unserved_after_s)
        self._batch_size = batch_size
        self._reported: set[str] = set()

    async def prune_inbox(self, older_than: timedelta) -> int:
        """Forget consumed event ids older than ``older_than``; how many were forgotten."""
        return await self._service.prune_inbox(older_than)

    async def prune_parked_controls(self, older_than: timedelta) -> int:
        """Drop controls parked longer than ``older_than``: their run never started.

        Returns:
            How many controls were dropped.
        """
        dropped = await self._service.prune_parked_controls(older_than)
        if dropped:
            _log.warning("dropped controls whose run never started", extra={"controls": dropped})
        return dropped

    async def prune_rejected_events(self, older_than: timedelta) -> int:
        """Forget events rejected longer than ``older_than`` ago; how many."""
        return await self._service.prune_rejected_events(older_than)

    async def report_waiting(self) -> None:
        """Publish each lane's waiting tasks and idle time as metrics, and warn.

        A warning names each lane whose tasks wait while no worker took or ran any of
        them for ``after_s``: typically a queue no worker serves (its tasks run as soon
        as one starts).
        """
        lanes = await self._service.waiting_lanes()
        for lane in self._reported - lanes.keys():
            TASKS_WAITING.labels(lane).set(0)
            LANE_IDLE.labels(lane).set(0)
        for lane, (count, idle) in lanes.items():
            TASKS_WAITING.labels(lane).set(count)
            LANE_IDLE.labels(lane).set(idle.total_seconds())
            if idle >= self._after:
                _log.warning(
                    "tasks wait and no worker took one lately: is a worker serving the queue?",
                    extra={"lane": lane, "waiting": count, "idle_s": round(idle.total_seconds())},
                )
        self._reported = set(lanes)

    async def report_backlogs(self) -> None:
        """Publish the dead letters kept and the timers due as metrics."""
        backlogs = await self._service.backlogs()
        DEAD_LETTERS.set(backlogs.dead_letters)
        TIMERS_DUE.set(backlogs.timers_due)

    async def tell_unserved(self) -> int:
        """Show, on the run views, the tasks waiting on a queue no worker serves lately.

        Returns:
            How many tasks were newly told.
        """
        return await self._service.tell_unserved(self._unserved_after, self._batch_size)

    async def reconcile_once(self) -> int:
        """Re-publish one batch of stuck tasks.

        Returns:
            How many were re-published.
        """
        count = await self._service.republish_stuck(self._after, self._batch_size)
        if count:
            _log.info("re-published stuck task.scheduled events", extra={"tasks": count})
        return count
