"""A run's status and what may change it: control actions and outcome events.

::

    pending ──task activity──▶ running ──workflow.completed──▶ succeeded
       │                        │  ▲    ──workflow.failed────▶ failed ──retry──▶ running
       │ pause                  │  │ resume
       └──────────────────────▶ paused
    pending | running | paused ──cancel──▶ cancelled

Finished runs (succeeded, failed, cancelled) stay finished: a late outcome event for
one changes nothing, and only ``retry`` re-opens a failed run. Cancel is answered at
once (the user's decision is final); the scheduler stops the run's work when it reads
the control event.
"""

from __future__ import annotations

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


def after_task_activity(status: RunStatus) -> RunStatus:
    """The status once a task of the run was scheduled or started: a pending run runs."""
    return RunStatus.RUNNING if status is RunStatus.PENDING else status


def after_outcome(status: RunStatus, outcome: RunStatus) -> RunStatus:
    """The status once the scheduler reported the run's outcome.

    Args:
        status: The run's status now.
        outcome: ``SUCCEEDED``, ``FAILED`` or ``CANCELLED``.

    Returns:
        ``outcome``, unless the run had already finished.
    """
    return status if status.finished else outcome
