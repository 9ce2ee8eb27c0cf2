"""The run engine: scheduling, results, retries, dead letters, compensation, timers, control."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from interlock.common import topics
from interlock.common.events import Event
from interlock.events.v1 import definition_pb2, task_pb2, workflow_pb2
from interlock.scheduler.domain.run import RunState, TimerKind
from interlock.scheduler.domain.states import RunStatus, TaskStatus

NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)
RETRY = definition_pb2.RetryPolicy(
    max_attempts=3, initial_interval_ms=100, jitter=definition_pb2.RetryPolicy.JITTER_NONE
)


def spec(task_id: str, *deps: str, **fields: Any) -> definition_pb2.TaskSpec:
    fields.setdefault("type", "noop")
    fields.setdefault("retry", RETRY)
    return definition_pb2.TaskSpec(id=task_id, depends_on=deps, **fields)


def run_of(*tasks: definition_pb2.TaskSpec, input_json: bytes = b"{}") -> RunState:
    started = workflow_pb2.WorkflowStarted(
        workflow_name="wf",
        workflow_version=1,
        definition=definition_pb2.WorkflowDefinition(name="wf", version=1, tasks=tasks),
        input_json=input_json,
    )
    run = RunState(run_id="run-1", tenant="t1", definition=started, uniform=lambda lo, hi: hi)
    run.start(NOW)
    return run


def scheduled(events: list[Event]) -> list[tuple[str, int]]:
    found = []
    for event in events:
        if event.type == topics.TASK_SCHEDULED:
            payload = event.payload
            assert isinstance(payload, task_pb2.TaskScheduled)
            found.append((payload.task_id, payload.attempt))
    return found


def drain(run: RunState) -> list[Event]:
    events, run.events = run.events, []
    return events


def error(retryable: bool = True) -> workflow_pb2.TaskError:
    return workflow_pb2.TaskError(type="Boom", message="no", retryable=retryable)


def test_chain_schedules_one_task_after_another_with_rendered_params() -> None:
    params = json.dumps({"body": "{{ tasks.a.output.value }}", "src": "{{ input.src }}"})
    run = run_of(
        spec("a"), spec("b", "a", params_json=params.encode()), input_json=b'{"src": "s3"}'
    )
    assert scheduled(drain(run)) == [("a", 1)]
    run.task_completed("a", 1, b'{"value": 42}', NOW)
    events = drain(run)
    assert scheduled(events) == [("b", 1)]
    assert isinstance(events[0].payload, task_pb2.TaskScheduled)
    assert json.loads(events[0].payload.params_json) == {"body": 42, "src": "s3"}
    run.task_completed("b", 1, b"{}", NOW)
    events = drain(run)
    assert [event.type for event in events] == [topics.WORKFLOW_COMPLETED]
    assert run.status is RunStatus.SUCCEEDED


def test_an_outcome_without_a_start_records_its_worker_and_start_time() -> None:
    run = run_of(spec("a"), spec("b"))
    drain(run)
    started = NOW - timedelta(milliseconds=3)
    run.task_completed("a", 1, b"{}", NOW, started, "worker-1")
    run.task_failed("b", 1, error(retryable=False), NOW, started, "worker-2")
    assert (run.tasks["a"].worker_id, run.tasks["a"].started_at) == ("worker-1", started)
    assert (run.tasks["b"].worker_id, run.tasks["b"].started_at) == ("worker-2", started)


def test_diamond_fans_out_and_joins() -> None:
    run = run_of(spec("a"), spec("b", "a"), spec("c", "a"), spec("d", "b", "c"))
    drain(run)
    run.task_completed("a", 1, b"1", NOW)
    assert scheduled(drain(run)) == [("b", 1), ("c", 1)]
    run.task_completed("b", 1, b"2", NOW)
    assert scheduled(drain(run)) == []
    run.task_completed("c", 1, b"3", NOW)
    assert scheduled(drain(run)) == [("d", 1)]


def test_duplicate_stale_and_reordered_results_change_nothing() -> None:
    run = run_of(spec("a"), spec("b", "a"))
    drain(run)
    run.task_completed("a", 1, b"1", NOW)  # before task.started: reordered
    run.task_started("a", 1, "w", NOW)  # late start
    run.task_completed("a", 1, b"1", NOW)  # duplicate
    run.task_failed("a", 1, error(), NOW)  # contradicting late result
    assert scheduled(drain(run)) == [("b", 1)]
    assert run.tasks["a"].status is TaskStatus.SUCCEEDED
    statuses = [(t.from_status, t.to_status) for t in run.transitions if t.task_id == "a"]
    assert statuses == [
        ("pending", "scheduled"),
        ("scheduled", "running"),
        ("running", "succeeded"),
    ]


def test_retry_waits_for_the_backoff_timer_then_schedules_the_next_attempt() -> None:
    run = run_of(spec("a"))
    drain(run)
    run.task_started("a", 1, "w", NOW)
    run.task_failed("a", 1, error(), NOW)
    assert run.tasks["a"].status is TaskStatus.RETRYING
    timer = run.timers[("a", TimerKind.RETRY)]
    assert timer.due_at == NOW + timedelta(milliseconds=100)
    assert run.fire_due_timers(NOW) == 0
    assert run.fire_due_timers(timer.due_at) == 1
    assert scheduled(drain(run)) == [("a", 2)]
    run.task_completed("a", 2, b"{}", NOW)
    assert run.status is RunStatus.SUCCEEDED


def test_exhaustion_dead_letters_fails_the_run_and_compensates_in_reverse() -> None:
    comp = definition_pb2.CompensationSpec(type="noop", params_json=b'{"undo": true}')
    run = run_of(
        spec("a", compensate=comp),
        spec("b", "a", compensate=comp),
        spec("c", "b"),
        spec("d", "c"),
    )
    for task_id in ("a", "b"):
        run.task_completed(task_id, 1, b"{}", NOW)
    drain(run)
    for attempt in (1, 2, 3):
        run.task_failed("c", attempt, error(), NOW)
        run.fire_due_timers(NOW + timedelta(hours=1))
    events = drain(run)
    types = [event.type for event in events]
    assert types[-4:] == [
        topics.TASK_DEAD_LETTERED,
        topics.WORKFLOW_FAILED,
        topics.TASK_SETTLED,
        topics.TASK_SCHEDULED,
    ]
    assert run.tasks["d"].status is TaskStatus.SKIPPED
    assert run.status is RunStatus.FAILED
    assert run.dead_letters[0].attempts == 3
    assert scheduled(events)[-1] == ("compensate:b", 1)
    run.task_completed("compensate:b", 1, b"{}", NOW)
    assert scheduled(drain(run)) == [("compensate:a", 1)]


def test_non_retryable_failure_dead_letters_at_once_and_replay_resumes_the_run() -> None:
    run = run_of(spec("a"), spec("b", "a"))
    drain(run)
    run.task_failed("a", 1, error(retryable=False), NOW)
    assert run.tasks["a"].status is TaskStatus.DEAD_LETTERED
    assert run.status is RunStatus.FAILED
    drain(run)
    assert run.replay("a", NOW)
    assert scheduled(drain(run)) == [("a", 2)]
    run.task_completed("a", 2, b"{}", NOW)
    run.task_completed("b", 1, b"{}", NOW)
    assert run.status is RunStatus.SUCCEEDED


def test_start_to_close_and_heartbeat_timeouts_fail_the_attempt_as_retryable() -> None:
    run = run_of(spec("a", timeout_ms=1000), spec("b", heartbeat_timeout_ms=500))
    drain(run)
    run.task_started("a", 1, "w", NOW)
    run.task_started("b", 1, "w", NOW)
    run.task_heartbeat("b", 1, NOW + timedelta(milliseconds=400))
    run.fire_due_timers(NOW + timedelta(milliseconds=800))
    assert run.tasks["b"].status is TaskStatus.RUNNING
    run.fire_due_timers(NOW + timedelta(milliseconds=1000))
    assert run.tasks["a"].status is TaskStatus.RETRYING
    assert run.tasks["a"].error is not None and run.tasks["a"].error.type == "StartToCloseTimeout"
    assert run.tasks["b"].status is TaskStatus.RETRYING
    assert run.tasks["b"].error is not None and run.tasks["b"].error.type == "HeartbeatTimeout"


def test_delay_task_waits_on_its_timer_then_continues_the_dag() -> None:
    delay = definition_pb2.DelaySpec(duration_ms=2000)
    run = run_of(spec("wait", type="delay", delay=delay), spec("after", "wait"))
    assert scheduled(drain(run)) == []
    assert run.timers[("wait", TimerKind.DELAY)].due_at == NOW + timedelta(seconds=2)
    run.fire_due_timers(NOW + timedelta(seconds=2))
    assert run.tasks["wait"].status is TaskStatus.SUCCEEDED
    assert scheduled(drain(run)) == [("after", 1)]


def test_cancelled_delay_skips_the_task() -> None:
    delay = definition_pb2.DelaySpec(duration_ms=60_000)
    run = run_of(spec("wait", type="delay", delay=delay), spec("after", "wait"))
    assert run.cancel_delay("wait", NOW)
    assert run.tasks["wait"].status is TaskStatus.SKIPPED
    assert scheduled(drain(run)) == [("after", 1)]
    assert not run.cancel_delay("wait", NOW)


def test_pause_holds_scheduling_and_resume_continues() -> None:
    run = run_of(spec("a"), spec("b", "a"))
    drain(run)
    run.pause(NOW)
    run.task_completed("a", 1, b"{}", NOW)
    assert scheduled(drain(run)) == []
    run.resume(NOW)
    assert scheduled(drain(run)) == [("b", 1)]


def test_retry_due_while_paused_is_scheduled_on_resume() -> None:
    run = run_of(spec("a"))
    drain(run)
    run.task_failed("a", 1, error(), NOW)
    run.pause(NOW)
    run.fire_due_timers(NOW + timedelta(seconds=1))
    assert scheduled(drain(run)) == []
    run.resume(NOW)
    assert scheduled(drain(run)) == [("a", 2)]


def test_cancel_stops_everything_and_tells_workers() -> None:
    run = run_of(spec("a", timeout_ms=1000), spec("b", "a"))
    drain(run)
    run.task_started("a", 1, "w", NOW)
    run.cancel("stop", "alice", NOW)
    events = drain(run)
    assert [event.type for event in events] == [topics.TASK_SETTLED, topics.WORKFLOW_CANCELLED]
    settled = events[0].payload
    assert isinstance(settled, task_pb2.TasksSettled)
    assert [(t.task_id, t.status, t.reason) for t in settled.tasks] == [
        ("a", "cancelled", "the run was cancelled: stop"),
        ("b", "cancelled", "the run was cancelled: stop"),
    ]
    assert {task.status for task in run.tasks.values()} == {TaskStatus.CANCELLED}
    assert run.timers == {}
    run.task_completed("a", 1, b"{}", NOW)
    assert run.status is RunStatus.CANCELLED


def test_retry_control_reschedules_dead_lettered_tasks() -> None:
    run = run_of(spec("a"))
    drain(run)
    run.task_failed("a", 1, error(retryable=False), NOW)
    drain(run)
    assert run.retry(NOW) == 1
    assert scheduled(drain(run)) == [("a", 2)]
    assert run.status is RunStatus.RUNNING


def test_unrenderable_params_dead_letter_the_task() -> None:
    run = run_of(spec("a", params_json=b'{"x": "{{ input.missing }}"}'))
    assert run.tasks["a"].status is TaskStatus.DEAD_LETTERED
    assert run.status is RunStatus.FAILED


def test_retry_held_while_the_run_failed_is_scheduled_when_it_reopens() -> None:
    run = run_of(spec("a"), spec("b"))
    drain(run)
    run.task_failed("a", 1, error(), NOW)
    run.task_failed("b", 1, error(retryable=False), NOW)
    assert run.status is RunStatus.FAILED
    run.fire_due_timers(NOW + timedelta(hours=1))
    assert run.tasks["a"].status is TaskStatus.RETRYING
    assert scheduled(drain(run)) == []
    assert run.retry(NOW) == 1
    assert sorted(scheduled(drain(run))) == [("a", 2), ("b", 2)]


def test_the_run_says_it_runs_when_it_starts_and_when_a_retry_or_replay_resumes_it() -> None:
    # The workflow service's run view takes the run's status from these, not task events.
    run = run_of(spec("a"))
    assert [e.type for e in drain(run)] == [topics.WORKFLOW_RUNNING, topics.TASK_SCHEDULED]
    run.task_failed("a", 1, error(retryable=False), NOW)
    assert topics.WORKFLOW_RUNNING not in [e.type for e in drain(run)]
    run.retry(NOW + timedelta(seconds=1))
    resumed = drain(run)
    assert [e.type for e in resumed][:1] == [topics.WORKFLOW_RUNNING]
    assert resumed[0].time == NOW + timedelta(seconds=1)
    run.task_failed("a", 2, error(retryable=False), NOW)
    drain(run)
    assert run.replay("a", NOW) == 3
    assert [e.type for e in drain(run)][:1] == [topics.WORKFLOW_RUNNING]


def test_params_too_large_to_publish_dead_letter_the_task() -> None:
    # Each upstream output is within the worker's limit; inlined together they are not.
    # Before, the 1.2 MB task.scheduled was refused by the broker for ever.
    params = json.dumps({u: f"{{{{ tasks.{u}.output }}}}" for u in "abc"})
    run = run_of(spec("a"), spec("b"), spec("c"), spec("d", *"abc", params_json=params.encode()))
    drain(run)
    output = json.dumps({"text": "é" * 100_000}, ensure_ascii=False).encode()
    for upstream in "abc":
        run.task_completed(upstream, 1, output, NOW)
    assert run.tasks["d"].status is TaskStatus.DEAD_LETTERED
    assert run.tasks["d"].error is not None
    assert run.tasks["d"].error.type == "ParamsTooLarge"
    assert scheduled(drain(run)) == []


def test_rendered_params_are_not_ascii_escaped() -> None:
    run = run_of(spec("a", params_json=b'{"x": "{{ input.x }}"}'), input_json='{"x": "é"}'.encode())
    started, event = drain(run)
    assert started.type == topics.WORKFLOW_RUNNING
    assert isinstance(event.payload, task_pb2.TaskScheduled)
    assert event.payload.params_json == '{"x": "é"}'.encode()


def test_final_outputs_too_large_for_the_run_outcome_are_left_out() -> None:
    run = run_of(spec("a"), spec("b"), spec("c"))
    drain(run)
    output = json.dumps({"text": "é" * 100_000}, ensure_ascii=False).encode()
    for task_id in "abc":
        run.task_completed(task_id, 1, output, NOW)
    (completed,) = drain(run)
    assert isinstance(completed.payload, workflow_pb2.WorkflowCompleted)
    assert completed.payload.output_json == b""
    assert run.status is RunStatus.SUCCEEDED
