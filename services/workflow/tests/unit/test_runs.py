"""Run status transitions: control actions and outcome events."""

import pytest

from interlock.workflow.domain import (
    ControlAction,
    RunStatus,
    TransitionNotAllowedError,
    after_control,
    after_outcome,
    after_task_activity,
)

ALLOWED = {
    (RunStatus.PENDING, ControlAction.CANCEL): RunStatus.CANCELLED,
    (RunStatus.RUNNING, ControlAction.CANCEL): RunStatus.CANCELLED,
    (RunStatus.PAUSED, ControlAction.CANCEL): RunStatus.CANCELLED,
    (RunStatus.PENDING, ControlAction.PAUSE): RunStatus.PAUSED,
    (RunStatus.RUNNING, ControlAction.PAUSE): RunStatus.PAUSED,
    (RunStatus.PAUSED, ControlAction.RESUME): RunStatus.RUNNING,
    (RunStatus.FAILED, ControlAction.RETRY): RunStatus.RUNNING,
}


@pytest.mark.parametrize("status", list(RunStatus))
@pytest.mark.parametrize("action", list(ControlAction))
def test_control_transitions(status: RunStatus, action: ControlAction) -> None:
    target = ALLOWED.get((status, action))
    if target is None:
        with pytest.raises(TransitionNotAllowedError, match=f"cannot {action} a {status} run"):
            after_control(status, action)
    else:
        assert after_control(status, action) is target


def test_cancelling_a_finished_run_is_refused() -> None:
    for status in (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED):
        assert status.finished
        with pytest.raises(TransitionNotAllowedError):
            after_control(status, ControlAction.CANCEL)


def test_task_activity_starts_a_pending_run_only() -> None:
    assert after_task_activity(RunStatus.PENDING) is RunStatus.RUNNING
    assert after_task_activity(RunStatus.PAUSED) is RunStatus.PAUSED
    assert after_task_activity(RunStatus.CANCELLED) is RunStatus.CANCELLED


def test_the_first_outcome_wins() -> None:
    assert after_outcome(RunStatus.RUNNING, RunStatus.SUCCEEDED) is RunStatus.SUCCEEDED
    assert after_outcome(RunStatus.PAUSED, RunStatus.FAILED) is RunStatus.FAILED
    assert after_outcome(RunStatus.CANCELLED, RunStatus.SUCCEEDED) is RunStatus.CANCELLED
