"""Task and run state machines: the transitions allowed between the shared statuses.

The statuses themselves are :mod:`interlock.common.statuses`.
"""

from __future__ import annotations

from interlock.common.statuses import ENDED_RUN, TERMINAL_TASK, RunStatus, TaskStatus
from interlock.scheduler.domain.errors import InvalidTransitionError

__all__ = [
    "ACTIVE_TASK",
    "ENDED_RUN",
    "RUN_TRANSITIONS",
    "TASK_TRANSITIONS",
    "TERMINAL_TASK",
    "InvalidTransitionError",
    "RunStatus",
    "TaskStatus",
    "check_run_transition",
    "check_task_transition",
]


_T = TaskStatus
TASK_TRANSITIONS: dict[TaskStatus, frozenset[TaskStatus]] = {
    _T.PENDING: frozenset({_T.SCHEDULED, _T.CANCELLED, _T.SKIPPED}),
    # A result before task.started is recorded as scheduled → running → result; a task
    # whose params cannot be rendered fails while scheduled.
    _T.SCHEDULED: frozenset({_T.RUNNING, _T.FAILED, _T.CANCELLED, _T.SKIPPED}),
    # A running attempt that went silent (its worker vanished, its outcome was lost)
    # goes back to the queue as the same attempt.
    _T.RUNNING: frozenset({_T.SCHEDULED, _T.SUCCEEDED, _T.FAILED, _T.CANCELLED}),
    _T.FAILED: frozenset({_T.RETRYING, _T.DEAD_LETTERED}),
    _T.RETRYING: frozenset({_T.SCHEDULED, _T.CANCELLED}),
    # Replay of a dead letter and the run's retry control schedule a new attempt.
    _T.DEAD_LETTERED: frozenset({_T.SCHEDULED}),
    _T.SUCCEEDED: frozenset(),
    _T.CANCELLED: frozenset(),
    # A failed run that resumes (retry, replay) judges its skipped tasks again.
    _T.SKIPPED: frozenset({_T.PENDING}),
}
"""Allowed next statuses of each task status."""

_R = RunStatus
RUN_TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    _R.PENDING: frozenset({_R.RUNNING, _R.CANCELLED}),
    _R.RUNNING: frozenset({_R.PAUSED, _R.SUCCEEDED, _R.FAILED, _R.CANCELLED}),
    _R.PAUSED: frozenset({_R.RUNNING, _R.CANCELLED}),
    _R.SUCCEEDED: frozenset(),
    # Retrying a failed run or replaying its dead letter resumes it.
    _R.FAILED: frozenset({_R.RUNNING}),
    _R.CANCELLED: frozenset(),
}
"""Allowed next statuses of each run status."""

ACTIVE_TASK = frozenset({_T.SCHEDULED, _T.RUNNING})
"""Task statuses where an attempt is out with the workers (or a timer)."""


def check_task_transition(current: TaskStatus, target: TaskStatus) -> None:
    """Raise unless a task may move from ``current`` to ``target``.

    Raises:
        InvalidTransitionError: The move is not in :data:`TASK_TRANSITIONS`.
    """
    if target not in TASK_TRANSITIONS[current]:
        raise InvalidTransitionError(f"task cannot go from {current} to {target}")


def check_run_transition(current: RunStatus, target: RunStatus) -> None:
    """Raise unless a run may move from ``current`` to ``target``.

    Raises:
        InvalidTransitionError: The move is not in :data:`RUN_TRANSITIONS`.
    """
    if target not in RUN_TRANSITIONS[current]:
        raise InvalidTransitionError(f"run cannot go from {current} to {target}")
