"""Default bounds on attempts: a lost attempt is dispatched again, none runs forever."""

from collections.abc import Iterator
from datetime import timedelta

import pytest

from interlock.common import topics
from interlock.events.v1 import definition_pb2, task_pb2
from interlock.scheduler.domain.run import (
    AttemptBounds,
    TimerKind,
    attempt_bounds,
    configure_attempt_bounds,
)
from interlock.scheduler.domain.states import TaskStatus

from .test_run_engine import NOW, drain, run_of, scheduled

NO_RETRY = definition_pb2.RetryPolicy(max_attempts=1)


@pytest.fixture(autouse=True)
def bounds() -> Iterator[None]:
    before = attempt_bounds()
    configure_attempt_bounds(AttemptBounds(lost_after_ms=60_000, start_to_close_ms=3_600_000))
    yield
    configure_attempt_bounds(before)


def plain(task_id: str) -> definition_pb2.TaskSpec:
    """A task as a user writes it: no timeout, no heartbeat timeout, no retries."""
    return definition_pb2.TaskSpec(id=task_id, type="sleep", retry=NO_RETRY)


def test_a_silent_attempt_goes_back_to_the_queue_as_the_same_attempt() -> None:
    run = run_of(plain("a"))
    first = drain(run)
    run.task_started("a", 1, "w1", NOW)
    run.fire_due_timers(NOW + timedelta(seconds=59))
    assert run.tasks["a"].status is TaskStatus.RUNNING

    run.fire_due_timers(NOW + timedelta(seconds=60))

    again = drain(run)
    assert run.tasks["a"].status is TaskStatus.SCHEDULED
    assert scheduled(again) == [("a", 1)]
    original, repeated = first[-1].payload, again[0].payload
    assert isinstance(original, task_pb2.TaskScheduled)
    assert isinstance(repeated, task_pb2.TaskScheduled)
    assert repeated.idempotency_key == original.idempotency_key
    # Its outcome, from whichever worker, is taken as the attempt's.
    run.task_completed("a", 1, b"{}", NOW + timedelta(seconds=61))
    assert run.tasks["a"].status is TaskStatus.SUCCEEDED
    assert [e.type for e in drain(run)] == [topics.WORKFLOW_COMPLETED]


def test_heartbeats_keep_it_running_and_rewrite_the_timer_only_past_half_its_span() -> None:
    run = run_of(plain("a"))
    drain(run)
    run.task_started("a", 1, "w1", NOW)
    run.timers_set.clear()  # as saving does
    run.task_heartbeat("a", 1, NOW + timedelta(seconds=10))
    assert run.timers_set == {}
    run.task_heartbeat("a", 1, NOW + timedelta(seconds=31))
    assert run.timers[("a", TimerKind.HEARTBEAT)].due_at == NOW + timedelta(seconds=91)
    run.fire_due_timers(NOW + timedelta(seconds=90))
    assert run.tasks["a"].status is TaskStatus.RUNNING


def test_the_default_start_to_close_bound_fails_an_attempt_that_never_ends() -> None:
    run = run_of(plain("a"))
    drain(run)
    run.task_started("a", 1, "w1", NOW)
    for minute in range(1, 61):
        run.task_heartbeat("a", 1, NOW + timedelta(minutes=minute))
        run.fire_due_timers(NOW + timedelta(minutes=minute))
    assert run.tasks["a"].status is TaskStatus.DEAD_LETTERED
    assert run.tasks["a"].error is not None
    assert run.tasks["a"].error.type == "StartToCloseTimeout"


def test_an_instant_task_leaves_no_timer_row_to_delete() -> None:
    run = run_of(plain("a"))
    drain(run)
    run.task_completed("a", 1, b"{}", NOW, started_at=NOW, worker_id="w1")
    assert run.timers_set == {}
    assert run.timers_cleared == set()


def test_bounds_set_to_zero_leave_the_attempt_alone() -> None:
    configure_attempt_bounds(AttemptBounds(lost_after_ms=0, start_to_close_ms=0))
    run = run_of(plain("a"))
    drain(run)
    run.task_started("a", 1, "w1", NOW)
    assert run.timers == {}
