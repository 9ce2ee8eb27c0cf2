"""A run's events belong to its trace: its cause's span, else the context kept with the run."""

from datetime import UTC, datetime

from interlock.common import topics
from interlock.events.v1 import definition_pb2, workflow_pb2
from interlock.scheduler.domain.run import RunState, TimerKind

NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)
RUN_CONTEXT = "00-0af7651916cd43dd8448eb211c80319c-1111111111111111-01"
CAUSE = "00-0af7651916cd43dd8448eb211c80319c-2222222222222222-01"


def traced_run() -> RunState:
    retry = definition_pb2.RetryPolicy(
        max_attempts=2, initial_interval_ms=100, jitter=definition_pb2.RetryPolicy.JITTER_NONE
    )
    task = definition_pb2.TaskSpec(id="a", type="noop", retry=retry)
    started = workflow_pb2.WorkflowStarted(
        workflow_name="wf",
        workflow_version=1,
        definition=definition_pb2.WorkflowDefinition(name="wf", version=1, tasks=[task]),
        input_json=b"{}",
    )
    return RunState(run_id="run-1", tenant="t1", definition=started, traceparent=RUN_CONTEXT)


def test_the_start_schedules_in_the_runs_trace() -> None:
    run = traced_run()
    run.start(NOW)
    assert [(e.type, e.traceparent) for e in run.events] == [
        (topics.WORKFLOW_RUNNING, RUN_CONTEXT),
        (topics.TASK_SCHEDULED, RUN_CONTEXT),
    ]


def test_an_applied_event_parents_what_it_causes() -> None:
    run = traced_run()
    run.start(NOW)
    run.events.clear()
    run.cause_traceparent = CAUSE
    run.task_completed("a", 1, b"{}", NOW)
    assert run.events
    assert {e.traceparent for e in run.events} == {CAUSE}


def test_a_retry_timer_schedules_in_the_runs_trace() -> None:
    run = traced_run()
    run.start(NOW)
    run.cause_traceparent = CAUSE
    run.task_failed("a", 1, workflow_pb2.TaskError(type="Boom", retryable=True), NOW)
    run.cause_traceparent = None
    run.events.clear()
    due = run.timers[("a", TimerKind.RETRY)].due_at
    assert run.fire_due_timers(due) == 1
    assert [(e.type, e.traceparent) for e in run.events] == [(topics.TASK_SCHEDULED, RUN_CONTEXT)]
