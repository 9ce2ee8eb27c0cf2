from interlock.common import topics
from interlock.common.settings import KafkaOptions
from interlock.events.v1 import task_pb2, workflow_pb2

EXPECTED = {
    "workflow.started": workflow_pb2.WorkflowStarted,
    "workflow.completed": workflow_pb2.WorkflowCompleted,
    "workflow.failed": workflow_pb2.WorkflowFailed,
    "workflow.cancelled": workflow_pb2.WorkflowCancelled,
    "workflow.control": workflow_pb2.RunControl,
    "task.scheduled": task_pb2.TaskScheduled,
    "task.started": task_pb2.TaskStarted,
    "task.completed": task_pb2.TaskCompleted,
    "task.failed": task_pb2.TaskFailed,
    "task.heartbeat": task_pb2.TaskHeartbeat,
    "task.dead_lettered": task_pb2.TaskDeadLettered,
    "task.log": task_pb2.TaskLog,
    "task.settled": task_pb2.TasksSettled,
    "workflow.waiting": workflow_pb2.WorkflowWaiting,
    "task.log_missing": task_pb2.TaskLogMissing,
    "workflow.running": workflow_pb2.WorkflowRunning,
}


def test_every_event_type_is_listed_once_with_its_payload() -> None:
    assert {t.name: t.payload_type for t in topics.ALL} == EXPECTED
    assert len(topics.ALL) == len(EXPECTED)


def test_cloudevents_type_names_the_event_and_its_version() -> None:
    assert topics.TASK_SCHEDULED.cloudevents_type == "io.interlock.task.scheduled.v1"
    assert topics.WORKFLOW_CONTROL.cloudevents_type == "io.interlock.workflow.control.v1"


def test_lookups() -> None:
    for event_type in topics.ALL:
        assert topics.by_name(event_type.name) is event_type
        assert topics.by_cloudevents_type(event_type.cloudevents_type) is event_type
        assert topics.for_payload(event_type.payload_type) is event_type
    assert topics.by_name("task.unknown") is None
    assert topics.by_cloudevents_type("io.interlock.task.scheduled.v2") is None


def test_topic_name_takes_the_configured_prefix() -> None:
    assert topics.TASK_FAILED.topic() == "task.failed"
    options = KafkaOptions(kafka_topic_prefix="test-1.")
    assert topics.TASK_FAILED.topic(options) == "test-1.task.failed"


def test_parse_decodes_the_payload() -> None:
    message = task_pb2.TaskStarted(task_id="t1", attempt=2, worker_id="w")
    assert topics.TASK_STARTED.parse(message.SerializeToString()) == message
