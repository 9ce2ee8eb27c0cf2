"""Task progress folds events that arrive late, twice, or out of order."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from interlock.workflow.domain import TaskProgress, TaskStatus, TaskUpdate, advance

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def fold(*updates: TaskUpdate) -> TaskProgress:
    progress = TaskProgress()
    for update in updates:
        progress = advance(progress, update)
    return progress


SCHEDULED = TaskUpdate(status=TaskStatus.SCHEDULED, attempt=1, time=at(0))
STARTED = TaskUpdate(status=TaskStatus.RUNNING, attempt=1, time=at(1))
COMPLETED = TaskUpdate(
    status=TaskStatus.SUCCEEDED, attempt=1, time=at(2), started_at=at(1), output={"n": 1}
)


def test_in_order() -> None:
    progress = fold(SCHEDULED, STARTED, COMPLETED)
    assert progress == TaskProgress(
        status=TaskStatus.SUCCEEDED,
        attempts=1,
        scheduled_at=at(0),
        started_at=at(1),
        finished_at=at(2),
        output={"n": 1},
    )


def test_out_of_order_and_repeated_events_end_the_same() -> None:
    expected = fold(SCHEDULED, STARTED, COMPLETED)
    assert fold(COMPLETED, STARTED, SCHEDULED) == expected
    assert fold(SCHEDULED, COMPLETED, STARTED, COMPLETED, SCHEDULED) == expected


def test_a_retry_starts_a_new_attempt_and_old_attempt_events_are_ignored() -> None:
    failed = TaskUpdate(
        status=TaskStatus.FAILED,
        attempt=1,
        time=at(2),
        started_at=at(1),
        error={"type": "Boom", "message": "no", "retryable": True},
    )
    second = TaskUpdate(status=TaskStatus.SCHEDULED, attempt=2, time=at(5))
    progress = fold(SCHEDULED, STARTED, failed)
    assert (progress.status, progress.error) == (TaskStatus.FAILED, failed.error)
    progress = fold(SCHEDULED, failed, second, STARTED)
    assert progress == TaskProgress(status=TaskStatus.SCHEDULED, attempts=2, scheduled_at=at(5))


def test_dead_lettering_is_final_for_the_attempts_made() -> None:
    dead = TaskUpdate(
        status=TaskStatus.DEAD_LETTERED,
        attempt=3,
        time=at(9),
        error={"type": "Boom", "message": "no", "retryable": False},
    )
    late = TaskUpdate(status=TaskStatus.FAILED, attempt=3, time=at(8), error={"type": "x"})
    progress = fold(dead, late)
    assert (progress.status, progress.attempts, progress.finished_at) == (
        TaskStatus.DEAD_LETTERED,
        3,
        at(9),
    )
    assert progress.error == dead.error


def test_a_completion_that_says_when_it_was_scheduled_fills_every_time() -> None:
    # The scheduler's delay tasks: one task.completed, no task.scheduled or started.
    fired = TaskUpdate(
        status=TaskStatus.SUCCEEDED,
        attempt=1,
        time=at(5),
        started_at=at(0),
        scheduled_at=at(0),
        output={"fired_at": at(5).isoformat()},
    )
    progress = fold(fired)
    assert (progress.scheduled_at, progress.started_at, progress.finished_at) == (
        at(0),
        at(0),
        at(5),
    )
    # A task.scheduled's own time stays when the completion comes after it.
    assert fold(SCHEDULED, replace(fired, scheduled_at=at(3))).scheduled_at == at(0)


def test_a_scheduled_task_shows_why_it_waits_until_it_starts() -> None:
    reason = "waiting for a worker serving queue 'gpu'"
    waiting = replace(SCHEDULED, time=at(5), reason=reason)
    told = fold(SCHEDULED, waiting)
    assert (told.status, told.scheduled_at, told.reason) == (TaskStatus.SCHEDULED, at(0), reason)
    assert advance(told, replace(SCHEDULED, time=at(6))).reason == reason
    assert advance(told, STARTED).reason is None
    assert fold(SCHEDULED, STARTED, waiting).reason is None
