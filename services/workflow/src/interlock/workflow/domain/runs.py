"""A run's status and what may change it: control actions and the scheduler's run events.

::

    pending ──workflow.running──▶ running ──workflow.completed──▶ succeeded
       │                          │  ▲    ──workflow.failed────▶ failed ──retry──▶ running
       │ pause                    │  │ resume                       └─workflow.running─▶ running
       └────────────────────────▶ paused
    pending | running | paused ──cancel──▶ cancelled

Finished runs stay finished: a late outcome event for one changes nothing, except that
a failed run resumed by the scheduler (a retry, a dead letter's replay) follows its
``workflow.running`` and its next outcome. Cancel is answered at once (the user's
decision is final); the scheduler stops the run's work when it reads the control event.

Run events travel on separate topics, so one may overtake another: each carries the
scheduler's time, and :class:`RunState` keeps enough (the end, the latest
``workflow.running`` or ``workflow.waiting`` applied, the retry that reopened the run)
for an older event to change nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from interlock.common.statuses import RunStatus
from interlock.events.v1 import workflow_pb2
from interlock.workflow.domain.errors import TransitionNotAllowedError


class ControlAction(StrEnum):
    """What a user may ask of a run."""

    CANCEL = "cancel"
    PAUSE = "pause"
    RESUME = "resume"
    RETRY = "retry"

    @property
    def message(self) -> workflow_pb2.RunControl.Action.ValueType:
        """The action in the ``RunControl`` event."""
        return _MESSAGE_ACTIONS[self]


_MESSAGE_ACTIONS = {
    ControlAction.CANCEL: workflow_pb2.RunControl.ACTION_CANCEL,
    ControlAction.PAUSE: workflow_pb2.RunControl.ACTION_PAUSE,
    ControlAction.RESUME: workflow_pb2.RunControl.ACTION_RESUME,
    ControlAction.RETRY: workflow_pb2.RunControl.ACTION_RETRY,
}

_CONTROL: dict[ControlAction, tuple[frozenset[RunStatus], RunStatus]] = {
    ControlAction.CANCEL: (
        frozenset({RunStatus.PENDING, RunStatus.RUNNING, RunStatus.PAUSED}),
        RunStatus.CANCELLED,
    ),
    ControlAction.PAUSE: (frozenset({RunStatus.PENDING, RunStatus.RUNNING}), RunStatus.PAUSED),
    ControlAction.RESUME: (frozenset({RunStatus.PAUSED}), RunStatus.RUNNING),
    ControlAction.RETRY: (frozenset({RunStatus.FAILED}), RunStatus.RUNNING),
}


def after_control(status: RunStatus, action: ControlAction) -> RunStatus:
    """The status a control action leads to.

    Args:
        status: The run's status now.
        action: What the user asked.

    Returns:
        The new status.

    Raises:
        TransitionNotAllowedError: The action is not allowed from ``status`` (e.g.
            cancelling a finished run).
    """
    allowed, target = _CONTROL[action]
    if status not in allowed:
        expected = ", ".join(sorted(allowed))
        raise TransitionNotAllowedError(
            f"cannot {action} a {status} run (only a run that is {expected})"
        )
    return target


def after_outcome(status: RunStatus, outcome: RunStatus) -> RunStatus:
    """The status once the scheduler reported the run's outcome.

    Args:
        status: The run's status now.
        outcome: ``SUCCEEDED``, ``FAILED`` or ``CANCELLED``.

    Returns:
        ``outcome``, unless the run had already finished.
    """
    return status if status.finished else outcome


@dataclass(frozen=True)
class RunState:
    """What the run view keeps of a run besides its tasks (the scheduler holds those)."""

    status: RunStatus
    finished_at: datetime | None
    status_reason: str | None = None
    """Why the run waits for a concurrency slot (``workflow.waiting``), else ``None``."""
    event_at: datetime | None = None
    """The time of the latest ``workflow.running`` or ``workflow.waiting`` applied, or of
    the retry that reopened the run: an outcome older than it ended an earlier try."""


def after_running(state: RunState, at: datetime) -> RunState:
    """The run once the scheduler said, at ``at``, that it runs (``workflow.running``).

    A pending run runs; a running one stops waiting (a retried run got its slot); a
    failed run whose failure is older than ``at`` was resumed by a retry or a dead
    letter's replay. A paused, cancelled or succeeded run, or one the event is older
    than, stays as it is.
    """
    if state.event_at is not None and at < state.event_at:
        return state
    if state.status in (RunStatus.PENDING, RunStatus.RUNNING) or _resumed(state, at):
        return RunState(RunStatus.RUNNING, None, None, at)
    return replace(state, event_at=at)


def after_waiting(state: RunState, reason: str, at: datetime) -> RunState:
    """The run once the scheduler said, at ``at``, why it waits for a concurrency slot.

    A pending or running (retried) run shows the reason, and so does a failed run whose
    failure is older than ``at``: a retry or a dead letter's replay queued it, and it
    stays failed until it gets its slot (:func:`after_running`).
    """
    if state.event_at is not None and at < state.event_at:
        return state
    if state.status in (RunStatus.PENDING, RunStatus.RUNNING) or _resumed(state, at):
        return replace(state, status_reason=reason, event_at=at)
    return replace(state, event_at=at)


def after_outcome_event(state: RunState, outcome: RunStatus, at: datetime) -> RunState:
    """The run once the scheduler said, at ``at``, how it ended.

    An unfinished run ends (:func:`after_outcome`); so does a failed run whose failure
    is older than ``at``: it was resumed and ended again, and its ``workflow.running``
    may still be on its way (:func:`after_running` then ignores it). An outcome older
    than the run's latest start, wait or retry ended an earlier try and changes nothing.
    """
    if state.event_at is not None and at < state.event_at:
        return state
    if not state.status.finished or _resumed(state, at):
        return RunState(outcome, at, None, state.event_at)
    return state


def _resumed(state: RunState, at: datetime) -> bool:
    """Whether ``state`` failed before ``at``: what the scheduler says then is news."""
    return (
        state.status is RunStatus.FAILED
        and state.finished_at is not None
        and at > state.finished_at
    )
