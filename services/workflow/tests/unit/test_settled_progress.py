"""The run view folds the scheduler's task.settled: skipped and cancelled tasks, with why."""

from datetime import UTC, datetime, timedelta

from interlock.common.statuses import TaskStatus
from interlock.workflow.domain import TaskProgress, TaskUpdate, advance

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_never_scheduled_task_becomes_skipped_with_its_reason() -> None:
    skipped = advance(
        TaskProgress(),
        TaskUpdate(status=TaskStatus.SKIPPED, attempt=0, time=T0, reason="the run failed"),
    )
    assert skipped.status is TaskStatus.SKIPPED
    assert skipped.reason == "the run failed"
    assert skipped.finished_at == T0


def test_a_late_outcome_of_a_cancelled_attempt_does_not_override_the_cancellation() -> None:
    running = advance(TaskProgress(), TaskUpdate(status=TaskStatus.RUNNING, attempt=1, time=T0))
    cancelled = advance(
        running,
        TaskUpdate(status=TaskStatus.CANCELLED, attempt=1, time=T0, reason="the run was cancelled"),
    )
    late = advance(
        cancelled,
        TaskUpdate(status=TaskStatus.SUCCEEDED, attempt=1, time=T0 + timedelta(seconds=1)),
    )
    assert late == cancelled
    assert late.started_at == T0


def test_a_new_attempt_after_a_skip_clears_the_reason() -> None:
    skipped = TaskProgress(status=TaskStatus.SKIPPED, reason="the run failed")
    scheduled = advance(skipped, TaskUpdate(status=TaskStatus.SCHEDULED, attempt=1, time=T0))
    assert scheduled.status is TaskStatus.SCHEDULED
    assert scheduled.reason is None
