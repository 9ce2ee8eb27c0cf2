"""The reconcilers (resources): what the broker may have lost, made good.

:class:`StartReconciler` re-publishes run starts; :class:`ViewReconciler` brings run
views whose events were lost to the scheduler's state.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

import grpc

from interlock.common.resources import PeriodicPasses
from interlock.common.scheduler_state import RunTruth, SchedulerTask
from interlock.common.statuses import TaskStatus
from interlock.workflow.domain import TaskUpdate, decode_output
from interlock.workflow.service import WorkflowService

_log = logging.getLogger(__name__)


class StartReconciler(PeriodicPasses):
    """Every ``interval_s``, re-publishes workflow.started for runs stuck in pending.

    Any number of instances may run: each pass claims runs with ``SKIP LOCKED``. Each
    pass also prunes the projection's inbox of ids older than ``inbox_retention_s``.

    Args:
        service: Does the work (:meth:`WorkflowService.republish_stalled_starts`).
        interval_s: Time between passes. Default: 15 s.
        grace_s: How long a run may stay pending before its start is re-published;
            doubles after each re-publish. Default: 60 s.
        max_republishes: Re-publishes per run at most. Default: 5.
        batch_size: Most runs one pass re-publishes. Default: 500.
        inbox_retention_s: Age after which applied event ids are forgotten; longer
            than any redelivery. Default: 7 days.
        name: Name ``/readyz`` reports. Default: ``"reconciler"``.
    """

    def __init__(
        self,
        service: WorkflowService,
        *,
        interval_s: float = 15.0,
        grace_s: float = 60.0,
        max_republishes: int = 5,
        batch_size: int = 500,
        inbox_retention_s: float = 7 * 86_400,
        name: str = "reconciler",
    ) -> None:
        super().__init__(interval_s=interval_s)
        self.name = name
        self._service = service
        self._grace_s = grace_s
        self._max_republishes = max_republishes
        self._batch_size = batch_size
        self._inbox_retention_s = inbox_retention_s

    async def pass_once(self) -> int:
        """One pass; returns how many runs were re-published."""
        count = await self._service.republish_stalled_starts(
            grace_s=self._grace_s,
            max_republishes=self._max_republishes,
            batch_size=self._batch_size,
        )
        if count:
            _log.info("re-published stalled run starts", extra={"runs": count})
        return count

    async def run_pass(self) -> None:
        """Re-publish until a batch comes back short, then prune the inbox."""
        while await self.pass_once() >= self._batch_size:
            pass
        await self._service.prune_inbox(older_than_s=self._inbox_retention_s)


class ViewReconciler(PeriodicPasses):
    """Every ``interval_s``, brings run views that may lack lost events to the scheduler's state.

    A run's view is asked about when it is unfinished and has not changed for
    ``quiet_s`` (again at most every ``quiet_s``), or finished (within ``look_back_s``)
    while showing a task unfinished. The scheduler's answer is folded in like events
    (:meth:`WorkflowService.fold_scheduler_state`). Any number of instances may run:
    each pass claims runs with ``SKIP LOCKED``.

    Args:
        service: Claims runs and folds answers in.
        truth: Asks the scheduler about one run.
        quiet_s: Silence after which a view is checked.
        look_back_s: How long after its end a finished run's view is still checked.
            Default: 1 day.
        interval_s: Time between passes. Default: 30 s.
        batch_size: Most runs of each kind one pass asks about. Default: 200.
        name: Name ``/readyz`` reports. Default: ``"view-reconciler"``.
    """

    def __init__(
        self,
        service: WorkflowService,
        truth: RunTruth,
        *,
        quiet_s: float,
        look_back_s: float = 86_400.0,
        interval_s: float = 30.0,
        batch_size: int = 200,
        name: str = "view-reconciler",
    ) -> None:
        super().__init__(interval_s=interval_s)
        self.name = name
        self._service = service
        self._truth = truth
        self._quiet_s = quiet_s
        self._look_back_s = look_back_s
        self._batch_size = batch_size

    async def pass_once(self) -> int:
        """One pass; returns how many views changed."""
        runs = await self._service.claim_unsettled_views(
            quiet_s=self._quiet_s, look_back_s=self._look_back_s, limit=self._batch_size
        )
        changed = 0
        for tenant, run_id in runs:
            changed += await self._fold(tenant, run_id)
        if changed:
            _log.info("run views brought to the scheduler's state", extra={"runs": changed})
        return changed

    async def _fold(self, tenant: str, run_id: uuid.UUID) -> bool:
        try:
            truth = await self._truth(tenant, str(run_id))
        except grpc.aio.AioRpcError as error:
            _log.warning(
                "cannot ask the scheduler about a run",
                extra={"run_id": str(run_id), "code": str(error.code())},
            )
            return False
        if truth is None:
            return False
        updates = [(task.task_id, update) for task in truth.tasks if (update := task_update(task))]
        return await self._service.fold_scheduler_state(
            tenant, run_id, status=truth.status, ended_at=truth.ended_at, tasks=updates
        )


def task_update(task: SchedulerTask) -> TaskUpdate | None:
    """What the scheduler's ``task`` says, as the event that would have said it.

    ``None`` for a pending or retrying task: the view has no stage for them, and the
    events of the attempt before or after will say the rest.
    """
    now = datetime.now(UTC)
    if task.status is TaskStatus.SCHEDULED:
        return TaskUpdate(status=task.status, attempt=task.attempt, time=task.scheduled_at or now)
    if task.status is TaskStatus.RUNNING:
        return TaskUpdate(
            status=task.status,
            attempt=task.attempt,
            time=task.started_at or now,
            scheduled_at=task.scheduled_at,
        )
    if task.status in (TaskStatus.PENDING, TaskStatus.RETRYING):
        return None
    error = None
    if task.status in (TaskStatus.FAILED, TaskStatus.DEAD_LETTERED):
        error = {"type": task.error_type, "message": task.error_message, "retryable": False}
    return TaskUpdate(
        status=task.status,
        attempt=task.attempt,
        time=task.ended_at or now,
        started_at=task.started_at,
        scheduled_at=task.scheduled_at,
        output=decode_output(task.output_json) if task.status is TaskStatus.SUCCEEDED else None,
        error=error,
    )
