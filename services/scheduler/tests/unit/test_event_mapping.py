"""Consumed events move a run only when they come from the run's tenant."""

from datetime import UTC, datetime

import pytest
from google.protobuf.message import Message

from interlock.common.events import Event
from interlock.common.topics import for_payload
from interlock.events.v1 import definition_pb2, task_pb2, workflow_pb2
from interlock.scheduler.domain.errors import ForeignEventError
from interlock.scheduler.domain.events import apply_event
from interlock.scheduler.domain.run import RunState
from interlock.scheduler.domain.states import RunStatus, TaskStatus

NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)


def started_run() -> RunState:
    started = workflow_pb2.WorkflowStarted(
        workflow_name="wf",
        workflow_version=1,
        definition=definition_pb2.WorkflowDefinition(
            name="wf", version=1, tasks=[definition_pb2.TaskSpec(id="a", type="noop")]
        ),
        input_json=b"{}",
    )
    run = RunState(run_id="run-1", tenant="t1", definition=started)
    run.start(NOW)
    return run


def event(payload: Message, tenant: str) -> Event[Message]:
    return Event(
        type=for_payload(type(payload)), payload=payload, tenant=tenant, run_id="run-1", source="w"
    )


def test_a_completion_of_the_runs_tenant_completes_the_task() -> None:
    run = started_run()
    apply_event(run, event(task_pb2.TaskCompleted(task_id="a", attempt=1), "t1"), NOW)
    assert run.tasks["a"].status is TaskStatus.SUCCEEDED
    assert run.status is RunStatus.SUCCEEDED


@pytest.mark.parametrize(
    "payload",
    [
        task_pb2.TaskStarted(task_id="a", attempt=1, worker_id="w"),
        task_pb2.TaskCompleted(task_id="a", attempt=1),
        task_pb2.TaskFailed(task_id="a", attempt=1),
        task_pb2.TaskHeartbeat(task_id="a", attempt=1),
        workflow_pb2.RunControl(action=workflow_pb2.RunControl.ACTION_CANCEL),
    ],
)
def test_an_event_of_another_tenant_raises_and_changes_nothing(payload: Message) -> None:
    run = started_run()
    run.transitions.clear()
    run.events.clear()
    with pytest.raises(ForeignEventError) as raised:
        apply_event(run, event(payload, "t2"), NOW)
    assert (raised.value.event_tenant, raised.value.run_tenant) == ("t2", "t1")
    assert run.tasks["a"].status is TaskStatus.SCHEDULED
    assert run.status is RunStatus.RUNNING
    assert not run.transitions and not run.events
