"""A task as the run view shows it, from the scheduler's state of the task."""

from datetime import UTC, datetime, timedelta

from interlock.common.scheduler_state import SchedulerTask
from interlock.workflow.domain import TaskProgress, TaskStatus, WaitingTask, task_progress

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_a_succeeded_task_shows_its_times_and_output() -> None:
    task = SchedulerTask(
        task_id="a",
        status=TaskStatus.SUCCEEDED,
        attempt=1,
        scheduled_at=at(0),
        started_at=at(1),
        ended_at=at(2),
        output_json=b'{"n": 1}',
    )
    assert task_progress(task) == TaskProgress(
        status=TaskStatus.SUCCEEDED,
        attempts=1,
        scheduled_at=at(0),
        started_at=at(1),
        finished_at=at(2),
        output={"n": 1},
    )


def test_a_failed_attempt_waiting_for_its_retry_shows_failed_with_the_error() -> None:
    task = SchedulerTask(
        task_id="a",
        status=TaskStatus.RETRYING,
        attempt=2,
        started_at=at(1),
        ended_at=at(2),
        error_type="TimeoutError",
        error_message="slow",
        error_retryable=True,
    )
    shown = task_progress(task)
    assert (shown.status, shown.attempts, shown.finished_at) == (TaskStatus.FAILED, 2, at(2))
    assert shown.error == {"type": "TimeoutError", "message": "slow", "retryable": True}


def test_a_dead_lettered_task_shows_the_traceback() -> None:
    task = SchedulerTask(
        task_id="a",
        status=TaskStatus.DEAD_LETTERED,
        attempt=3,
        ended_at=at(2),
        error_type="Boom",
        error_message="no",
        error_traceback="Traceback: Boom",
    )
    assert task_progress(task).error == {
        "type": "Boom",
        "message": "no",
        "retryable": False,
        "traceback": "Traceback: Boom",
    }


def test_a_skipped_or_cancelled_task_shows_its_reason_not_an_error() -> None:
    for status in (TaskStatus.SKIPPED, TaskStatus.CANCELLED):
        task = SchedulerTask(
            task_id="a",
            status=status,
            attempt=0,
            ended_at=at(2),
            error_type="RunFailed",
            error_message="the run failed",
            reason="the run failed",
        )
        shown = task_progress(task)
        assert (shown.status, shown.reason, shown.error) == (status, "the run failed", None)
        assert shown.finished_at == at(2)


def test_a_waiting_reason_shows_only_while_its_attempt_is_scheduled() -> None:
    waiting = WaitingTask(attempt=1, reason="waiting for a worker serving queue 'gpu'")
    scheduled = SchedulerTask(task_id="a", status=TaskStatus.SCHEDULED, attempt=1)
    assert task_progress(scheduled, waiting).reason == waiting.reason
    running = SchedulerTask(task_id="a", status=TaskStatus.RUNNING, attempt=1, started_at=at(1))
    assert task_progress(running, waiting).reason is None
    again = SchedulerTask(task_id="a", status=TaskStatus.SCHEDULED, attempt=2)
    assert task_progress(again, waiting).reason is None


def test_an_unfinished_task_shows_no_end_and_output_that_is_not_json_as_text() -> None:
    running = SchedulerTask(task_id="a", status=TaskStatus.RUNNING, attempt=1, ended_at=at(9))
    assert task_progress(running).finished_at is None
    text = SchedulerTask(task_id="a", status=TaskStatus.SUCCEEDED, attempt=1, output_json=b"\xff")
    assert task_progress(text).output == "\ufffd"
