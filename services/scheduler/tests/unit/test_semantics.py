"""Issue 17's rules in the engine: settled tasks, timeouts, conditions, rules, output."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from interlock.common import topics
from interlock.common.events import Event
from interlock.events.v1 import definition_pb2, task_pb2, workflow_pb2
from interlock.scheduler.domain.rules import Outcome, Verdict, judge
from interlock.scheduler.domain.run import RunState, TimerKind
from interlock.scheduler.domain.states import RunStatus, TaskStatus

R = definition_pb2
NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)
RETRY = definition_pb2.RetryPolicy(
    max_attempts=3, initial_interval_ms=100, jitter=definition_pb2.RetryPolicy.JITTER_NONE
)


def spec(task_id: str, *deps: str, **fields: Any) -> definition_pb2.TaskSpec:
    fields.setdefault("type", "noop")
    fields.setdefault("retry", RETRY)
    return definition_pb2.TaskSpec(id=task_id, depends_on=deps, **fields)


def drain(run: RunState) -> list[Event]:
    events, run.events = run.events, []
    return events


def scheduled(events: list[Event]) -> list[tuple[str, int]]:
    found = []
    for event in events:
        if event.type == topics.TASK_SCHEDULED:
            payload = event.payload
            assert isinstance(payload, task_pb2.TaskScheduled)
            found.append((payload.task_id, payload.attempt))
    return found


def error(retryable: bool = True) -> workflow_pb2.TaskError:
    return workflow_pb2.TaskError(type="Boom", message="no", retryable=retryable)


S, F, K, N = Outcome.SUCCESS, Outcome.FAILURE, Outcome.SKIPPED, Outcome.NOT_DONE


def run_with(
    *tasks: definition_pb2.TaskSpec, input_json: bytes = b"{}", limited: bool = False, **run: Any
) -> RunState:
    started = workflow_pb2.WorkflowStarted(
        workflow_name="wf",
        workflow_version=1,
        definition=definition_pb2.WorkflowDefinition(name="wf", version=1, tasks=tasks, **run),
        input_json=input_json,
    )
    state = RunState(run_id="run-1", tenant="t1", definition=started, uniform=lambda lo, hi: hi)
    state.start(NOW, limited=limited)
    return state


def settled(events: list[Event]) -> list[tuple[str, str, str]]:
    found = []
    for event in events:
        if event.type == topics.TASK_SETTLED:
            payload = event.payload
            assert isinstance(payload, task_pb2.TasksSettled)
            found += [(t.task_id, t.status, t.reason) for t in payload.tasks]
    return found


@pytest.mark.parametrize(
    ("rule", "upstream", "verdict"),
    [
        (R.TRIGGER_RULE_UNSPECIFIED, [S, S], Verdict.RUN),
        (R.TRIGGER_RULE_ALL_SUCCESS, [S, N], Verdict.WAIT),
        (R.TRIGGER_RULE_ALL_SUCCESS, [N, F], Verdict.SKIP),
        (R.TRIGGER_RULE_ALL_SUCCESS, [S, K], Verdict.SKIP),
        (R.TRIGGER_RULE_ALL_DONE, [S, N], Verdict.WAIT),
        (R.TRIGGER_RULE_ALL_DONE, [F, K], Verdict.RUN),
        (R.TRIGGER_RULE_ONE_SUCCESS, [N, S], Verdict.RUN),
        (R.TRIGGER_RULE_ONE_SUCCESS, [F, N], Verdict.WAIT),
        (R.TRIGGER_RULE_ONE_SUCCESS, [F, K], Verdict.SKIP),
        (R.TRIGGER_RULE_ONE_FAILED, [N, F], Verdict.RUN),
        (R.TRIGGER_RULE_ONE_FAILED, [S, N], Verdict.WAIT),
        (R.TRIGGER_RULE_ONE_FAILED, [S, K], Verdict.SKIP),
        (R.TRIGGER_RULE_NONE_FAILED, [S, K], Verdict.RUN),
        (R.TRIGGER_RULE_NONE_FAILED, [S, N], Verdict.WAIT),
        (R.TRIGGER_RULE_NONE_FAILED, [N, F], Verdict.SKIP),
        (R.TRIGGER_RULE_ONE_FAILED, [], Verdict.RUN),
    ],
)
def test_trigger_rules_decide_as_in_airflow(
    rule: int, upstream: list[Outcome], verdict: Verdict
) -> None:
    assert judge(rule, [(f"u{i}", o) for i, o in enumerate(upstream)]).verdict is verdict


def test_a_false_condition_skips_its_branch_and_a_none_failed_join_runs() -> None:
    run = run_with(
        spec("check"),
        spec("big", "check", when="tasks.check.output.size > 10"),
        spec("after_big", "big"),
        spec("small", "check", when="not (tasks.check.output.size > 10)"),
        spec("join", "after_big", "small", trigger_rule=R.TRIGGER_RULE_NONE_FAILED),
        output_json=b'{"size": "{{ tasks.check.output.size }}"}',
    )
    drain(run)
    run.task_completed("check", 1, b'{"size": 3}', NOW)
    events = drain(run)
    assert scheduled(events) == [("small", 1)]
    assert settled(events) == [
        ("big", "skipped", "condition is false: tasks.check.output.size > 10"),
        ("after_big", "skipped", "upstream task 'big' was skipped"),
    ]
    run.task_completed("small", 1, b"{}", NOW)
    assert scheduled(drain(run)) == [("join", 1)]
    run.task_completed("join", 1, b"{}", NOW)
    completed = drain(run)[-1].payload
    assert isinstance(completed, workflow_pb2.WorkflowCompleted)
    assert run.status is RunStatus.SUCCEEDED
    assert json.loads(completed.output_json) == {"size": 3}


def test_a_failed_run_skips_its_pending_tasks_but_runs_cleanup_and_failure_handlers() -> None:
    run = run_with(
        spec("a"),
        spec("b", "a"),
        spec("c", "b"),
        spec("on_failure", "a", trigger_rule=R.TRIGGER_RULE_ONE_FAILED),
        spec("cleanup", "c", trigger_rule=R.TRIGGER_RULE_ALL_DONE),
    )
    drain(run)
    run.task_failed("a", 1, error(retryable=False), NOW)
    events = drain(run)
    assert run.status is RunStatus.FAILED
    assert settled(events) == [
        ("b", "skipped", "the run failed"),
        ("c", "skipped", "the run failed"),
    ]
    assert scheduled(events) == [("on_failure", 1), ("cleanup", 1)]
    assert run.tasks["b"].error is not None and run.tasks["b"].error.type == "RunFailed"
    run.task_failed("cleanup", 1, error(retryable=True), NOW)
    run.fire_due_timers(NOW + timedelta(hours=1))
    assert scheduled(drain(run)) == [("cleanup", 2)]


def test_retrying_a_failed_run_judges_its_skipped_tasks_again() -> None:
    run = run_with(spec("a"), spec("b", "a"))
    run.task_failed("a", 1, error(retryable=False), NOW)
    assert run.tasks["b"].status is TaskStatus.SKIPPED
    assert run.retry(NOW) == 1
    assert run.tasks["b"].status is TaskStatus.PENDING
    run.task_completed("a", 2, b"{}", NOW)
    drain(run)
    run.task_completed("b", 1, b"{}", NOW)
    assert run.status is RunStatus.SUCCEEDED


def test_a_condition_over_values_of_the_wrong_kind_fails_the_task_clearly() -> None:
    run = run_with(spec("a", when="input.n > 'x'"), input_json=b'{"n": 1}')
    assert run.status is RunStatus.FAILED
    assert run.dead_letters[0].error.type == "ConditionError"
    assert "cannot order a number and a string" in run.dead_letters[0].error.message


def test_an_attempt_not_started_in_time_is_retried_then_dead_lettered() -> None:
    retry = definition_pb2.RetryPolicy(
        max_attempts=2, initial_interval_ms=10, jitter=definition_pb2.RetryPolicy.JITTER_NONE
    )
    run = run_with(spec("a", schedule_to_start_timeout_ms=5_000, retry=retry, queue="gpu"))
    assert run.timers[("a", TimerKind.SCHEDULE_TO_START)].due_at == NOW + timedelta(seconds=5)
    run.fire_due_timers(NOW + timedelta(seconds=5))
    assert run.tasks["a"].status is TaskStatus.RETRYING
    assert run.tasks["a"].error is not None
    assert run.tasks["a"].error.type == "ScheduleToStartTimeout"
    assert "not started by a worker within 5000 ms (queue 'gpu')" in run.tasks["a"].error.message
    run.fire_due_timers(NOW + timedelta(seconds=6))
    assert run.tasks["a"].attempt == 2
    run.task_started("a", 2, "w", NOW + timedelta(seconds=7))
    assert ("a", TimerKind.SCHEDULE_TO_START) not in run.timers
    run.task_failed("a", 2, error(), NOW + timedelta(seconds=8))
    assert run.tasks["a"].status is TaskStatus.DEAD_LETTERED


def test_a_run_past_its_timeout_fails_and_cancels_its_running_tasks() -> None:
    run = run_with(spec("a"), spec("b"), spec("c", "a"), timeout_ms=60_000)
    run.task_started("a", 1, "w", NOW)
    run.task_completed("b", 1, b"{}", NOW)
    drain(run)
    run.fire_due_timers(NOW + timedelta(minutes=1))
    events = drain(run)
    assert run.status is RunStatus.FAILED
    assert settled(events) == [
        ("a", "cancelled", "the run timed out after 60000 ms"),
        ("c", "skipped", "the run failed"),
    ]
    failed = next(e.payload for e in events if e.type == topics.WORKFLOW_FAILED)
    assert isinstance(failed, workflow_pb2.WorkflowFailed)
    assert failed.error.type == "RunTimeout"
    run.task_completed("a", 1, b"{}", NOW + timedelta(minutes=2))
    assert run.tasks["a"].status is TaskStatus.CANCELLED


def test_an_output_that_reads_nothing_fails_the_run() -> None:
    run = run_with(spec("a"), output_json=b'{"x": "{{ input.missing }}"}')
    run.task_completed("a", 1, b"{}", NOW)
    assert run.status is RunStatus.FAILED
    failed = drain(run)[-1].payload
    assert isinstance(failed, workflow_pb2.WorkflowFailed)
    assert failed.error.type == "OutputError"


def test_a_limited_run_waits_without_tasks_until_admitted() -> None:
    run = run_with(spec("a"), limited=True, timeout_ms=1_000)
    assert run.waiting and run.status is RunStatus.PENDING and run.tasks == {}
    run.wait("waiting for a slot: 2 of 2 runs of 'wf' are running (max_concurrent_runs)", NOW)
    run.admit(NOW + timedelta(seconds=1))
    events = drain(run)
    assert [e.type for e in events] == [
        topics.WORKFLOW_WAITING,
        topics.WORKFLOW_RUNNING,
        topics.TASK_SCHEDULED,
    ]
    assert run.status is RunStatus.RUNNING
    assert run.timers[("", TimerKind.RUN_TIMEOUT)].due_at == NOW + timedelta(seconds=2)


def test_a_limited_run_retried_queues_for_a_slot_then_retries_when_admitted() -> None:
    run = run_with(spec("a"), limited=True)
    run.admit(NOW)
    run.task_failed("a", 1, error(retryable=False), NOW)
    drain(run)
    later = NOW + timedelta(minutes=1)
    assert run.retry(later, limited=True) == 1
    assert run.waiting and run.requested_at == later
    assert run.status is RunStatus.FAILED and drain(run) == []
    run.admit(later)
    assert run.status is RunStatus.RUNNING
    assert scheduled(drain(run)) == [("a", 2)]


def test_a_limited_run_replayed_queues_for_a_slot_then_reruns_only_that_task() -> None:
    run = run_with(spec("a"), spec("b"), spec("after", "a", "b"), limited=True)
    run.admit(NOW)
    run.task_failed("a", 1, error(retryable=False), NOW)
    run.task_failed("b", 1, error(retryable=False), NOW)
    drain(run)
    later = NOW + timedelta(minutes=1)
    assert run.replay("b", later, limited=True) == 2
    assert run.waiting and run.requested_at == later
    assert run.status is RunStatus.FAILED and drain(run) == []
    assert run.tasks["b"].awaits_rerun and not run.tasks["a"].awaits_rerun
    run.admit(later)
    assert run.status is RunStatus.RUNNING
    assert scheduled(drain(run)) == [("b", 2)]
    assert not run.tasks["b"].awaits_rerun
    assert run.tasks["a"].status is TaskStatus.DEAD_LETTERED


def test_a_replayed_task_of_a_running_limited_run_runs_at_once() -> None:
    run = run_with(spec("a"), spec("b"), limited=True)
    run.admit(NOW)
    run.task_failed("a", 1, error(retryable=False), NOW)
    run.task_failed("b", 1, error(retryable=False), NOW)
    assert run.replay("a", NOW, limited=True) == 2
    run.admit(NOW)  # the run got its slot again and resumed
    drain(run)
    run.waiting = False  # as saving it does
    assert run.status is RunStatus.RUNNING
    assert run.replay("b", NOW, limited=True) == 2
    assert not run.waiting
    assert scheduled(drain(run)) == [("b", 2)]


def test_cancelling_a_failed_run_withdraws_its_queued_retry() -> None:
    run = run_with(spec("a"))
    run.task_failed("a", 1, error(retryable=False), NOW)
    run.cancel("changed my mind", "me", NOW)
    assert run.withdrawn and run.status is RunStatus.FAILED


def test_a_cancelled_delay_still_lets_its_downstream_run() -> None:
    delay = definition_pb2.DelaySpec(duration_ms=60_000)
    run = run_with(spec("wait", type="delay", delay=delay), spec("after", "wait"))
    drain(run)
    assert run.cancel_delay("wait", NOW)
    assert scheduled(drain(run)) == [("after", 1)]


def test_admission_fills_free_slots_in_order_per_workflow_and_tenant() -> None:
    from interlock.scheduler.domain.admission import WaitingRun, admit

    waiting = [
        WaitingRun("r1", "etl", 2),
        WaitingRun("r2", "etl", 2),
        WaitingRun("r3", "report", 0),
        WaitingRun("r4", "etl", 2, reason="old reason"),
    ]
    decided = admit(waiting, {"etl": 1}, limit=0)
    assert decided.admitted == ["r1", "r3"]
    assert decided.reasons == {
        "r2": "waiting for a slot: 2 of 2 runs of 'etl' are running (max_concurrent_runs)",
        "r4": "waiting for a slot: 2 of 2 runs of 'etl' are running (max_concurrent_runs)",
    }
    by_tenant = admit(waiting, {"etl": 1}, limit=2)
    assert by_tenant.admitted == ["r1"]
    assert by_tenant.reasons["r3"] == "waiting for a slot: the tenant has 2 of its 2 runs running"
    told = "waiting for a slot: 1 of 1 runs of 'etl' are running (max_concurrent_runs)"
    unchanged = WaitingRun("r5", "etl", 1, reason=told)
    assert admit([unchanged], {"etl": 1}, limit=0).reasons == {}
