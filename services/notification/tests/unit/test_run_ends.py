"""What the scheduler's answer about a run becomes: the notice its end event would have been."""

from __future__ import annotations

from datetime import UTC, datetime

from interlock.common.scheduler_state import ScheduledRun, SchedulerTask
from interlock.common.statuses import RunStatus, TaskStatus
from interlock.notification.domain import EventName
from interlock.notification.reconciler import end_notice

ENDED_AT = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def run(status: RunStatus, *tasks: SchedulerTask) -> ScheduledRun:
    return ScheduledRun(status=status, ended_at=ENDED_AT, tasks=tasks, workflow="etl", version=3)


def test_a_run_not_ended_is_no_notice() -> None:
    assert end_notice("acme", "r1", run(RunStatus.RUNNING)) is None
    assert end_notice("acme", "r1", run(RunStatus.PAUSED)) is None


def test_each_end_is_its_event_keyed_by_the_run() -> None:
    for status, event in [
        (RunStatus.SUCCEEDED, EventName.RUN_SUCCEEDED),
        (RunStatus.FAILED, EventName.RUN_FAILED),
        (RunStatus.CANCELLED, EventName.RUN_CANCELLED),
    ]:
        notice = end_notice("acme", "r1", run(status))
        assert notice is not None
        assert (notice.event, notice.tenant, notice.event_id) == (event, "acme", "scheduler:r1")
        assert (notice.facts.workflow, notice.facts.version) == ("etl", 3)
        assert notice.facts.status == status.value and notice.facts.finished_at == ENDED_AT


def test_a_failed_run_names_its_failed_tasks_only() -> None:
    notice = end_notice(
        "acme",
        "r1",
        run(
            RunStatus.FAILED,
            SchedulerTask(task_id="a", status=TaskStatus.SUCCEEDED, attempt=1),
            SchedulerTask(
                task_id="b",
                status=TaskStatus.FAILED,
                attempt=2,
                error_type="ValueError",
                error_message="bad row",
            ),
            SchedulerTask(task_id="c", status=TaskStatus.CANCELLED, attempt=1),
        ),
    )
    assert notice is not None
    assert [(t.task_id, t.error_type, t.message) for t in notice.facts.failed_tasks] == [
        ("b", "ValueError", "bad row")
    ]
