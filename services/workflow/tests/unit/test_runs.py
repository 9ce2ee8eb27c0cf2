"""Run status transitions: control actions and the scheduler's run events."""

from datetime import UTC, datetime, timedelta

import pytest

from interlock.workflow.domain import (
    ControlAction,
    RunState,
    RunStatus,
    TransitionNotAllowedError,
    after_control,
    after_outcome,
    after_outcome_event,
    after_running,
    after_waiting,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SLOT = "waiting for a slot: 1 of 1 runs of 'etl' are running (max_concurrent_runs)"


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


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


def test_workflow_running_starts_a_pending_run_and_ends_its_wait() -> None:
    waiting = after_waiting(RunState(RunStatus.PENDING, None), SLOT, at(1))
    assert (waiting.status, waiting.status_reason) == (RunStatus.PENDING, SLOT)
    assert after_running(waiting, at(2)) == RunState(RunStatus.RUNNING, None, None, at(2))


def test_an_overtaken_wait_or_start_changes_nothing() -> None:
    running = after_running(RunState(RunStatus.PENDING, None), at(2))
    assert after_waiting(running, SLOT, at(1)) == running
    assert after_running(after_waiting(running, SLOT, at(3)), at(1)).status_reason == SLOT


def test_workflow_running_leaves_paused_and_finished_runs_alone() -> None:
    for status in (RunStatus.PAUSED, RunStatus.SUCCEEDED, RunStatus.CANCELLED):
        assert after_running(RunState(status, at(1)), at(2)).status is status


def test_a_failed_run_resumed_later_runs_and_its_new_end_wins() -> None:
    failed = RunState(RunStatus.FAILED, at(5))
    assert after_running(failed, at(4)).status is RunStatus.FAILED  # from before it failed
    replayed = after_waiting(failed, SLOT, at(6))
    assert (replayed.status, replayed.status_reason) == (RunStatus.FAILED, SLOT)
    resumed = after_running(replayed, at(7))
    assert (resumed.status, resumed.finished_at, resumed.status_reason) == (
        RunStatus.RUNNING,
        None,
        None,
    )
    assert after_outcome_event(resumed, RunStatus.SUCCEEDED, at(8)).status is RunStatus.SUCCEEDED


def test_a_resumed_run_s_end_overtaking_its_start_is_kept() -> None:
    ended_again = after_outcome_event(RunState(RunStatus.FAILED, at(5)), RunStatus.FAILED, at(9))
    assert ended_again.finished_at == at(9)
    assert after_running(ended_again, at(7)) == RunState(RunStatus.FAILED, at(9), None, at(7))


def test_an_outcome_older_than_the_failure_or_after_a_cancel_changes_nothing() -> None:
    failed = RunState(RunStatus.FAILED, at(5))
    assert after_outcome_event(failed, RunStatus.SUCCEEDED, at(4)) == failed
    cancelled = RunState(RunStatus.CANCELLED, at(5))
    assert after_outcome_event(cancelled, RunStatus.FAILED, at(9)) == cancelled


def test_an_outcome_older_than_a_later_start_wait_or_retry_changes_nothing() -> None:
    overtaken = RunState(RunStatus.RUNNING, None, None, at(7))  # running again since 7
    assert after_outcome_event(overtaken, RunStatus.FAILED, at(5)) == overtaken
    assert after_outcome_event(overtaken, RunStatus.FAILED, at(8)).status is RunStatus.FAILED


def test_the_first_outcome_wins() -> None:
    assert after_outcome(RunStatus.RUNNING, RunStatus.SUCCEEDED) is RunStatus.SUCCEEDED
    assert after_outcome(RunStatus.PAUSED, RunStatus.FAILED) is RunStatus.FAILED
    assert after_outcome(RunStatus.CANCELLED, RunStatus.SUCCEEDED) is RunStatus.CANCELLED
