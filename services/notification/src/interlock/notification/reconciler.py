"""The run-end reconciler (a resource): run ends the broker lost, learned from the scheduler.

A run's end event (``workflow.completed``, ``failed``, ``cancelled``) sent before the
broker restarted empty and not yet consumed is gone. Runs seen starting with no end seen
are asked about (``GetRun`` with the service's credential), and an ended one is fanned
out as its end event would have been: the same subscriptions' filters, the same message,
and the same one message per run end and subscription, so a late real event adds none.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from interlock.common.resources import PeriodicPasses
from interlock.common.scheduler_state import RunTruth, ScheduledRun, ask_about
from interlock.common.statuses import RunStatus, TaskStatus
from interlock.notification.domain import EventName, FailedTask, RunFacts
from interlock.notification.service import Notice, NotificationService

_log = logging.getLogger(__name__)

_END_EVENTS = {
    RunStatus.SUCCEEDED: EventName.RUN_SUCCEEDED,
    RunStatus.FAILED: EventName.RUN_FAILED,
    RunStatus.CANCELLED: EventName.RUN_CANCELLED,
}
_TASK_FAILURES = (TaskStatus.FAILED, TaskStatus.DEAD_LETTERED)


class RunEndReconciler(PeriodicPasses):
    """Every ``interval_s``, asks the scheduler about runs whose end was not seen.

    A run is asked about when it was seen starting more than ``quiet_s`` ago, within
    ``look_back_s``, with no end event since, and not asked about within ``quiet_s``.
    Any number of instances may run: each pass claims runs with ``SKIP LOCKED``.

    Args:
        service: Claims runs and fans their ends out.
        truth: Asks the scheduler about one run.
        quiet_s: Silence after the start before a run is asked about, and between two
            askings about the same run.
        look_back_s: How long after its start a run is still asked about. Default: 1 day.
        interval_s: Time between passes. Default: 30 s.
        batch_size: Most runs one pass asks about. Default: 200.
        name: Name ``/readyz`` reports. Default: ``"run-end-reconciler"``.
    """

    def __init__(
        self,
        service: NotificationService,
        truth: RunTruth,
        *,
        quiet_s: float,
        look_back_s: float = 86_400.0,
        interval_s: float = 30.0,
        batch_size: int = 200,
        name: str = "run-end-reconciler",
    ) -> None:
        super().__init__(interval_s=interval_s)
        self.name = name
        self._service = service
        self._truth = truth
        self._quiet_s = quiet_s
        self._look_back_s = look_back_s
        self._batch_size = batch_size

    async def pass_once(self) -> int:
        """One pass; returns how many deliveries the ends it learned wrote."""
        runs = await self._service.claim_unended_runs(
            quiet_s=self._quiet_s, look_back_s=self._look_back_s, limit=self._batch_size
        )
        created = 0
        async for tenant, run_id, truth in ask_about(self._truth, runs):
            notice = end_notice(tenant, run_id, truth) if truth is not None else None
            if notice is not None:
                created += await self._service.notify_run_end(notice)
        if created:
            _log.info("run ends learned from the scheduler", extra={"deliveries": created})
        return created


def end_notice(tenant: str, run_id: str, run: ScheduledRun) -> Notice | None:
    """The notice the run's end event would have been; ``None`` while it has not ended.

    A failed run's failed tasks are those the scheduler holds as failed or dead-lettered
    (the event names the one that ended the run); a cancelled run's reason is not kept by
    the scheduler, so it is empty.
    """
    event = _END_EVENTS.get(run.status)
    if event is None:
        return None
    finished_at = run.ended_at or datetime.now(UTC)
    failed = tuple(
        FailedTask(task_id=task.task_id, error_type=task.error_type, message=task.error_message)
        for task in run.tasks
        if run.status is RunStatus.FAILED and task.status in _TASK_FAILURES
    )
    facts = RunFacts(
        run_id=run_id,
        workflow=run.workflow,
        version=run.version,
        status=run.status.value,
        finished_at=finished_at,
        failed_tasks=failed,
    )
    return Notice(
        event_id=f"scheduler:{run_id}",
        tenant=tenant,
        event=event,
        time=finished_at,
        facts=facts,
    )
