"""A fired delay publishes its own task.completed: views learn its times from it."""

import json
from datetime import UTC, datetime, timedelta

from interlock.common import topics
from interlock.events.v1 import definition_pb2, task_pb2, workflow_pb2
from interlock.scheduler.domain.run import SOURCE, RunState
from interlock.scheduler.domain.states import TaskStatus

SET_AT = datetime(2026, 3, 2, 12, tzinfo=UTC)
FIRED_AT = SET_AT + timedelta(seconds=3)


def delay_run() -> RunState:
    tasks = [
        definition_pb2.TaskSpec(
            id="wait", type="delay", delay=definition_pb2.DelaySpec(duration_ms=2000)
        ),
        definition_pb2.TaskSpec(id="after", type="noop", depends_on=["wait"]),
    ]
    started = workflow_pb2.WorkflowStarted(
        workflow_name="wf",
        workflow_version=1,
        definition=definition_pb2.WorkflowDefinition(name="wf", version=1, tasks=tasks),
        input_json=b"{}",
    )
    run = RunState(run_id="run-1", tenant="t1", definition=started)
    run.start(SET_AT)
    assert [event.type for event in run.events] == [topics.WORKFLOW_RUNNING]
    run.events.clear()
    return run


def test_setting_a_delay_publishes_nothing_and_firing_it_publishes_its_completion() -> None:
    run = delay_run()
    assert run.events == []
    run.fire_due_timers(FIRED_AT)
    completions = [event for event in run.events if event.type == topics.TASK_COMPLETED]
    assert len(completions) == 1
    completed = completions[0].payload
    assert isinstance(completed, task_pb2.TaskCompleted)
    assert (completed.task_id, completed.attempt, completed.worker_id) == ("wait", 1, SOURCE)
    assert completed.scheduled_at.ToDatetime(tzinfo=UTC) == SET_AT
    assert completed.started_at.ToDatetime(tzinfo=UTC) == SET_AT
    assert json.loads(completed.output_json) == {"fired_at": FIRED_AT.isoformat()}
    assert completions[0].time == FIRED_AT
    # The completion comes first, then the downstream task it made ready.
    assert [event.type for event in run.events] == [topics.TASK_COMPLETED, topics.TASK_SCHEDULED]


def test_the_completion_consumed_back_changes_nothing() -> None:
    run = delay_run()
    run.fire_due_timers(FIRED_AT)
    completed = run.events[0].payload
    assert isinstance(completed, task_pb2.TaskCompleted)
    run.events.clear()
    run.transitions.clear()
    run.task_completed("wait", 1, completed.output_json, FIRED_AT + timedelta(seconds=1))
    assert (run.events, run.transitions) == ([], [])
    assert run.tasks["wait"].status is TaskStatus.SUCCEEDED
