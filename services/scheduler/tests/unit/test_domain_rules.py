"""States, DAG readiness, compensation order and backoff."""

import pytest

from interlock.events.v1 import definition_pb2
from interlock.scheduler.domain.backoff import retry_delay_ms
from interlock.scheduler.domain.dag import compensation_order, ready_tasks
from interlock.scheduler.domain.errors import InvalidTransitionError
from interlock.scheduler.domain.states import (
    RunStatus,
    TaskStatus,
    check_run_transition,
    check_task_transition,
)

T = TaskStatus


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (T.PENDING, T.SCHEDULED),
        (T.SCHEDULED, T.RUNNING),
        (T.RUNNING, T.SUCCEEDED),
        (T.RUNNING, T.FAILED),
        (T.FAILED, T.RETRYING),
        (T.RETRYING, T.SCHEDULED),
        (T.FAILED, T.DEAD_LETTERED),
        (T.DEAD_LETTERED, T.SCHEDULED),
        (T.PENDING, T.CANCELLED),
        (T.PENDING, T.SKIPPED),
    ],
)
def test_allowed_task_transitions(current: TaskStatus, target: TaskStatus) -> None:
    check_task_transition(current, target)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (T.PENDING, T.RUNNING),
        (T.PENDING, T.SUCCEEDED),
        (T.SUCCEEDED, T.SCHEDULED),
        (T.FAILED, T.SCHEDULED),
        (T.RETRYING, T.RUNNING),
        (T.CANCELLED, T.SCHEDULED),
        (T.SKIPPED, T.SCHEDULED),
    ],
)
def test_invalid_task_transitions_are_rejected(current: TaskStatus, target: TaskStatus) -> None:
    with pytest.raises(InvalidTransitionError):
        check_task_transition(current, target)


def test_run_transitions() -> None:
    check_run_transition(RunStatus.PENDING, RunStatus.RUNNING)
    check_run_transition(RunStatus.RUNNING, RunStatus.PAUSED)
    check_run_transition(RunStatus.PAUSED, RunStatus.RUNNING)
    check_run_transition(RunStatus.FAILED, RunStatus.RUNNING)
    for current, target in [
        (RunStatus.SUCCEEDED, RunStatus.RUNNING),
        (RunStatus.CANCELLED, RunStatus.RUNNING),
        (RunStatus.PENDING, RunStatus.PAUSED),
        (RunStatus.PAUSED, RunStatus.SUCCEEDED),
    ]:
        with pytest.raises(InvalidTransitionError):
            check_run_transition(current, target)


DIAMOND = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}


def test_ready_tasks_start_roots_and_parallel_branches() -> None:
    statuses = dict.fromkeys(DIAMOND, T.PENDING)
    assert ready_tasks(DIAMOND, statuses) == ["a"]
    statuses["a"] = T.SUCCEEDED
    assert ready_tasks(DIAMOND, statuses) == ["b", "c"]


def test_join_waits_for_every_upstream_task() -> None:
    statuses = {"a": T.SUCCEEDED, "b": T.SUCCEEDED, "c": T.RUNNING, "d": T.PENDING}
    assert ready_tasks(DIAMOND, statuses) == []
    statuses["c"] = T.SKIPPED
    assert ready_tasks(DIAMOND, statuses) == ["d"]


def test_compensations_run_in_reverse_dependency_order() -> None:
    order = compensation_order(DIAMOND, ["a", "b", "c"])
    assert order == {"a": ["b", "c"], "b": [], "c": []}


def test_compensation_order_skips_tasks_that_did_not_succeed() -> None:
    chain = {"a": [], "b": ["a"], "c": ["b"]}
    assert compensation_order(chain, ["a", "c"]) == {"a": ["c"], "c": []}


def policy(**fields: object) -> definition_pb2.RetryPolicy:
    return definition_pb2.RetryPolicy(**fields)  # type: ignore[arg-type]


def test_backoff_grows_exponentially_and_is_capped_without_jitter() -> None:
    none = definition_pb2.RetryPolicy.JITTER_NONE
    rules = policy(
        initial_interval_ms=100, backoff_coefficient=2.0, max_interval_ms=500, jitter=none
    )
    assert [retry_delay_ms(rules, attempt) for attempt in (1, 2, 3, 4, 5)] == [
        100,
        200,
        400,
        500,
        500,
    ]


def test_full_jitter_draws_between_zero_and_the_ceiling() -> None:
    seen: list[tuple[float, float]] = []

    def uniform(low: float, high: float) -> float:
        seen.append((low, high))
        return high / 4

    rules = policy(initial_interval_ms=1000, backoff_coefficient=3.0, jitter=2)
    assert retry_delay_ms(rules, 3, uniform) == 2250
    assert seen == [(0.0, 9000.0)]


def test_unspecified_jitter_means_full_jitter_with_defaults() -> None:
    assert retry_delay_ms(policy(), 2, lambda low, high: high) == 2000
