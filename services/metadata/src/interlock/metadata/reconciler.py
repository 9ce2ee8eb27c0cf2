"""The reconciler: what the broker lost of a run is taken from the scheduler.

The broker may lose events (the local one keeps nothing across a restart). Two kinds of
documents are asked about through the scheduler's ``GetRun`` and ``ListRunTasks``
(:class:`interlock.common.scheduler_state.SchedulerState`): a run still unfinished
with no event for ``quiet_after``, and a run finished whose document still shows a
task scheduled or running (its task events were lost, its end was not). Where the
scheduler's run or task status differs from the document's, its answer becomes facts
(event ids ``reconciled:…``) folded in like any event: the same merge, so a state
never goes back and a late real event changes no status.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from interlock.common.resources import PeriodicPasses
from interlock.common.scheduler_state import RunTruth, ScheduledRun, SchedulerTask, ask_about
from interlock.common.statuses import ENDED_RUN, TaskStatus
from interlock.metadata.domain import (
    AttemptFinished,
    AttemptScheduled,
    AttemptStarted,
    Fact,
    RunEnded,
    RunStarted,
    TaskDeadLettered,
    millis,
)
from interlock.metadata.errors import ExecutionNotFoundError
from interlock.metadata.service import ExecutionService

__all__ = ["Reconciler", "facts_from_scheduler"]

_log = logging.getLogger(__name__)

_FOLDED = {
    TaskStatus.SCHEDULED,
    TaskStatus.RUNNING,
    TaskStatus.SUCCEEDED,
    TaskStatus.FAILED,
    TaskStatus.DEAD_LETTERED,
}
"""Task statuses a document holds as attempt facts; the others (pending, retrying,
skipped, cancelled) it derives from the run and the attempts it has."""


class Reconciler(PeriodicPasses):
    """Every ``interval_s``, checks quiet documents against the scheduler.

    Args:
        service: Finds the documents to check and applies facts.
        truth: Asks the scheduler about one run.
        quiet_after: Silence after which a document is checked (and between two checks
            of one document).
        look_back: A finished run is checked only if its last event is this recent
            (older ones were checked already, or their lost events are history).
        interval_s: Time between passes. Default: 30 s.
        batch_size: Most runs one pass checks. Default: 200.
        name: Name ``/readyz`` reports. Default: ``"reconciler"``.
    """

    def __init__(
        self,
        service: ExecutionService,
        truth: RunTruth,
        *,
        quiet_after: timedelta,
        look_back: timedelta = timedelta(days=1),
        interval_s: float = 30.0,
        batch_size: int = 200,
        name: str = "reconciler",
    ) -> None:
        super().__init__(interval_s=interval_s)
        self.name = name
        self._service = service
        self._truth = truth
        self._quiet_after = quiet_after
        self._look_back = look_back
        self._batch_size = batch_size

    async def pass_once(self) -> int:
        """One pass; returns how many documents took something from the scheduler."""
        runs = await self._service.quiet_runs(quiet_for=self._quiet_after, limit=self._batch_size)
        room = self._batch_size - len(runs)
        if room > 0:
            runs += await self._service.finished_runs_to_reconcile(
                quiet_for=self._quiet_after, look_back=self._look_back, limit=room
            )
        facts: list[Fact] = []
        checked, corrected = [], 0
        async for tenant, run_id, truth in ask_about(self._truth, runs):
            checked.append(run_id)
            if truth is not None:
                try:
                    document = await self._service.get(tenant, run_id)
                except ExecutionNotFoundError:
                    continue  # expired since it was listed
                found = facts_from_scheduler(document, truth)
                corrected += bool(found)
                facts += found
        if facts:
            await self._service.apply(facts)
            _log.info("run states taken from the scheduler", extra={"runs": corrected})
        await self._service.mark_reconciled(checked)
        return corrected


def facts_from_scheduler(document: Mapping[str, Any], truth: ScheduledRun) -> list[Fact]:
    """The facts that bring ``document`` to the scheduler's state (none if it is there).

    Only what differs becomes a fact: a document already right gains no timeline entry.
    """
    tenant, run_id = document["tenant"], document["_id"]
    facts: list[Fact] = []
    if truth.status in ENDED_RUN and document.get("status") != truth.status.value:
        facts.append(
            RunEnded(
                event_id=f"reconciled:{run_id}:{truth.status.value}",
                tenant=tenant,
                run_id=run_id,
                time=millis(truth.ended_at or datetime.now(UTC)),
                status=truth.status,
            )
        )
    shown = {task["id"]: task.get("status") for task in document.get("tasks", [])}
    if not (document.get("run_events") or {}).get("started") and truth.created_at is not None:
        facts.append(_start(document, truth))
    for task in truth.tasks:
        if task.status in _FOLDED and shown.get(task.task_id) != task.status.value:
            facts += _task_facts(tenant, run_id, task)
    return facts


def _start(document: Mapping[str, Any], truth: ScheduledRun) -> RunStarted:
    """The run's identity and tasks for a document whose ``workflow.started`` was lost.

    The scheduler holds neither the input nor the labels: they stay empty, and the real
    event, should it come after all, sets them.
    """
    types = {task["id"]: task.get("type") or "" for task in document.get("tasks", [])}
    return RunStarted(
        event_id=f"reconciled:{document['_id']}:started",
        tenant=document["tenant"],
        run_id=document["_id"],
        time=millis(truth.created_at or datetime.now(UTC)),
        workflow=truth.workflow,
        version=truth.version,
        task_types={task.task_id: types.get(task.task_id, "") for task in truth.tasks},
    )


def _task_facts(tenant: str, run_id: str, task: SchedulerTask) -> list[Fact]:
    """What the scheduler's ``task`` says as facts of its latest attempt."""
    key = f"reconciled:{run_id}:{task.task_id}:{task.attempt}"
    now = datetime.now(UTC)
    common: dict[str, Any] = {"tenant": tenant, "run_id": run_id, "task_id": task.task_id}
    facts: list[Fact] = []
    scheduled = task.scheduled_at or (now if task.status is TaskStatus.SCHEDULED else None)
    if scheduled is not None:
        facts.append(
            AttemptScheduled(
                **common,
                event_id=f"{key}:scheduled",
                time=millis(scheduled),
                attempt=task.attempt,
                task_type="",
            )
        )
    if task.status is TaskStatus.SCHEDULED:
        return facts
    if task.status is TaskStatus.RUNNING:
        facts.append(
            AttemptStarted(
                **common,
                event_id=f"{key}:started",
                time=millis(task.started_at or now),
                attempt=task.attempt,
                worker_id="",
            )
        )
        return facts
    error = None
    if task.status is not TaskStatus.SUCCEEDED:
        error = {"type": task.error_type, "message": task.error_message, "retryable": False}
    ended = millis(task.ended_at or now)
    facts.append(
        AttemptFinished(
            **common,
            event_id=f"{key}:{'completed' if error is None else 'failed'}",
            time=ended,
            attempt=task.attempt,
            worker_id="",
            started_at=millis(task.started_at) if task.started_at else None,
            scheduled_at=millis(task.scheduled_at) if task.scheduled_at else None,
            output_bytes=len(task.output_json),
            error=error,
        )
    )
    if task.status is TaskStatus.DEAD_LETTERED:
        facts.append(
            TaskDeadLettered(
                **common,
                event_id=f"{key}:dead_lettered",
                time=ended,
                attempts=task.attempt,
                error=error,
            )
        )
    return facts
