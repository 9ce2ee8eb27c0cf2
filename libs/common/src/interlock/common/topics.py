"""The one list of Interlock's event types, their topics and their payload messages.

Every event type travels on its own topic, named after it (``task.scheduled``), and
carries one protobuf message from ``proto/interlock/events/v1``. Producers and
consumers look types up here; nothing else in the platform spells a topic name.

Example::

    from interlock.common import topics

    topics.TASK_SCHEDULED.name              # "task.scheduled"
    topics.TASK_SCHEDULED.cloudevents_type  # "io.interlock.task.scheduled.v1"
    topics.by_cloudevents_type("io.interlock.task.scheduled.v1") is topics.TASK_SCHEDULED

At start-up (``make up``, tests) :func:`ensure_topics` creates every topic with the
configured partition count, since the local broker would otherwise auto-create them
with its own default on first produce.

``task.scheduled`` is the one *routed* type: its records travel on a topic per queue
and priority band (:func:`task_topic`), so that only the workers of a queue read its
tasks and a worker can read its higher bands first. Those topics are created on
demand (:func:`ensure_task_topics`); the default queue's normal band keeps the plain
name, ``task.scheduled``. Consumers of every task (the run projection) subscribe to
the whole family (:attr:`EventType.family_pattern`).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic

from google.protobuf.message import Message
from typing_extensions import TypeVar

from interlock.common.settings import KafkaOptions
from interlock.events.v1 import task_pb2, workflow_pb2

__all__ = [
    "ALL",
    "CLOUDEVENTS_TYPE_PREFIX",
    "PRIORITY_BANDS",
    "TASK_COMPLETED",
    "TASK_DEAD_LETTERED",
    "TASK_FAILED",
    "TASK_HEARTBEAT",
    "TASK_LOG",
    "TASK_LOG_MISSING",
    "TASK_SCHEDULED",
    "TASK_SETTLED",
    "TASK_STARTED",
    "WORKFLOW_CANCELLED",
    "WORKFLOW_COMPLETED",
    "WORKFLOW_CONTROL",
    "WORKFLOW_FAILED",
    "WORKFLOW_RUNNING",
    "WORKFLOW_STARTED",
    "WORKFLOW_WAITING",
    "EventType",
    "by_cloudevents_type",
    "by_name",
    "ensure_task_topics",
    "ensure_topics",
    "for_payload",
    "priority_band",
    "queue_partitions",
    "queue_topics",
    "task_topic",
]

_log = logging.getLogger(__name__)

CLOUDEVENTS_TYPE_PREFIX = "io.interlock."
"""Prefix of every CloudEvents ``type`` attribute Interlock emits."""

P_co = TypeVar("P_co", bound=Message, covariant=True, default=Message)
"""The protobuf message class an event type carries."""
P = TypeVar("P", bound=Message)


@dataclass(frozen=True, kw_only=True)
class EventType(Generic[P_co]):
    """One kind of event: its topic, its payload message and its CloudEvents type.

    Attributes:
        name: Event type and topic name, e.g. ``"task.scheduled"`` (before any
            ``kafka_topic_prefix``).
        payload_type: The protobuf message class of the record value.
        version: Schema version, part of the CloudEvents type. Default: 1.
        route: For a routed type, the topic (before any prefix) a payload travels
            on, ``<name>`` or ``<name>.<suffix>``. Default: ``None``, every record
            on ``<name>``.
        cloudevents_type: ``io.interlock.<name>.v<version>``, derived.
    """

    name: str
    payload_type: type[P_co]
    version: int = 1
    route: Callable[[Any], str] | None = None
    cloudevents_type: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "cloudevents_type", f"{CLOUDEVENTS_TYPE_PREFIX}{self.name}.v{self.version}"
        )

    def topic(self, options: KafkaOptions | None = None) -> str:
        """Return the Kafka topic of this event type.

        Args:
            options: Supplies ``kafka_topic_prefix``. Default: no prefix.

        Returns:
            The prefix (if any) followed by :attr:`name`.
        """
        prefix = options.kafka_topic_prefix if options is not None else ""
        return f"{prefix}{self.name}"

    def family_pattern(self, options: KafkaOptions | None = None) -> str:
        """A regular expression matching every topic this type's records travel on.

        Args:
            options: Supplies ``kafka_topic_prefix``. Default: no prefix.

        Returns:
            The escaped topic name; for a routed type, followed by any dotted suffix.
        """
        escaped = re.escape(self.topic(options))
        return escaped + r"(\..+)?" if self.route is not None else escaped

    def parse(self, data: bytes) -> P_co:
        """Decode a record value into this type's payload message.

        Args:
            data: Serialized protobuf bytes.

        Returns:
            The payload message.

        Raises:
            google.protobuf.message.DecodeError: When ``data`` is not a valid message.
        """
        message = self.payload_type()
        message.ParseFromString(data)
        return message


PRIORITY_BANDS: tuple[str, ...] = ("high", "", "low")
"""Priority bands, highest first: priority above 0, 0 (the default), below 0.

Each band of a queue is a topic of its own, which its workers read highest band first;
within a band tasks keep their dispatch order. Three bands, not one topic per
priority: every topic multiplies the partitions each worker and the broker keep."""

_QUEUE_MARK = "queue"


def priority_band(priority: int) -> str:
    """The band of ``priority``: ``"high"`` above 0, ``""`` at 0, ``"low"`` below."""
    if priority > 0:
        return "high"
    if priority < 0:
        return "low"
    return ""


def task_topic(queue: str, priority: int = 0) -> str:
    """The topic (before any prefix) of a task of ``queue`` at ``priority``.

    ``task.scheduled`` for the default queue (``""``) at priority 0, else
    ``task.scheduled[.<band>][.queue.<queue>]``, e.g. ``task.scheduled.high.queue.gpu``.
    Queue names never start with a dot, and the queue part always comes last, so two
    queues or bands never share a topic.
    """
    band = priority_band(priority)
    name = "task.scheduled"
    if band:
        name = f"{name}.{band}"
    if queue:
        name = f"{name}.{_QUEUE_MARK}.{queue}"
    return name


def queue_topics(queue: str) -> tuple[str, ...]:
    """The topics (before any prefix) of every band of ``queue``, highest band first."""
    return tuple(task_topic(queue, priority) for priority in (1, 0, -1))


def _route_scheduled(payload: task_pb2.TaskScheduled) -> str:
    return task_topic(payload.queue, payload.priority)


WORKFLOW_STARTED = EventType(name="workflow.started", payload_type=workflow_pb2.WorkflowStarted)
"""A run was accepted and should start (workflow service → scheduler, metadata)."""
WORKFLOW_COMPLETED = EventType(
    name="workflow.completed", payload_type=workflow_pb2.WorkflowCompleted
)
"""A run ended with every task succeeded."""
WORKFLOW_FAILED = EventType(name="workflow.failed", payload_type=workflow_pb2.WorkflowFailed)
"""A run ended because a task could not succeed."""
WORKFLOW_CANCELLED = EventType(
    name="workflow.cancelled", payload_type=workflow_pb2.WorkflowCancelled
)
"""A run was cancelled by a user."""
WORKFLOW_CONTROL = EventType(name="workflow.control", payload_type=workflow_pb2.RunControl)
"""A user asked to cancel, pause, resume or retry a run."""
TASK_SCHEDULED = EventType(
    name="task.scheduled", payload_type=task_pb2.TaskScheduled, route=_route_scheduled
)
"""The scheduler hands an attempt to the workers of its queue (routed: :func:`task_topic`)."""
TASK_STARTED = EventType(name="task.started", payload_type=task_pb2.TaskStarted)
"""A worker picked an attempt up."""
TASK_COMPLETED = EventType(name="task.completed", payload_type=task_pb2.TaskCompleted)
"""An attempt succeeded."""
TASK_FAILED = EventType(name="task.failed", payload_type=task_pb2.TaskFailed)
"""An attempt failed."""
TASK_HEARTBEAT = EventType(name="task.heartbeat", payload_type=task_pb2.TaskHeartbeat)
"""An attempt is still alive."""
TASK_DEAD_LETTERED = EventType(name="task.dead_lettered", payload_type=task_pb2.TaskDeadLettered)
"""A task exhausted its attempts and was parked."""
TASK_LOG = EventType(name="task.log", payload_type=task_pb2.TaskLog)
"""Lines a task wrote while it ran."""
TASK_SETTLED = EventType(name="task.settled", payload_type=task_pb2.TasksSettled)
"""Tasks the scheduler skipped or cancelled, with the reason."""
WORKFLOW_WAITING = EventType(name="workflow.waiting", payload_type=workflow_pb2.WorkflowWaiting)
"""A run waits, pending, for a concurrency slot."""
TASK_LOG_MISSING = EventType(name="task.log_missing", payload_type=task_pb2.TaskLogMissing)
"""Lines of an ended attempt the metadata service lacks; its worker sends them again."""
WORKFLOW_RUNNING = EventType(name="workflow.running", payload_type=workflow_pb2.WorkflowRunning)
"""A run started running, or a failed run resumed (scheduler → the workflow service's view)."""

ALL: tuple[EventType, ...] = (
    WORKFLOW_STARTED,
    WORKFLOW_COMPLETED,
    WORKFLOW_FAILED,
    WORKFLOW_CANCELLED,
    WORKFLOW_CONTROL,
    TASK_SCHEDULED,
    TASK_STARTED,
    TASK_COMPLETED,
    TASK_FAILED,
    TASK_HEARTBEAT,
    TASK_DEAD_LETTERED,
    TASK_LOG,
    TASK_SETTLED,
    WORKFLOW_WAITING,
    TASK_LOG_MISSING,
    WORKFLOW_RUNNING,
)
"""Every event type, in the order above."""


_BY_NAME: dict[str, EventType] = {t.name: t for t in ALL}
_BY_CLOUDEVENTS_TYPE: dict[str, EventType] = {t.cloudevents_type: t for t in ALL}
_BY_PAYLOAD: dict[type[Message], EventType] = {t.payload_type: t for t in ALL}
if not len(_BY_NAME) == len(_BY_CLOUDEVENTS_TYPE) == len(_BY_PAYLOAD) == len(ALL):
    raise RuntimeError("event type names, CloudEvents types and payload classes must be unique")


def by_name(name: str) -> EventType | None:
    """Return the event type named ``name`` (e.g. ``"task.failed"``), or ``None``."""
    return _BY_NAME.get(name)


def by_cloudevents_type(cloudevents_type: str) -> EventType | None:
    """Return the event type whose CloudEvents type is ``cloudevents_type``, or ``None``."""
    return _BY_CLOUDEVENTS_TYPE.get(cloudevents_type)


def for_payload(payload_type: type[P]) -> EventType[P]:
    """Return the event type that carries ``payload_type``.

    Args:
        payload_type: A protobuf message class, e.g. ``task_pb2.TaskScheduled``.

    Returns:
        Its event type.

    Raises:
        KeyError: When no event type carries that message.
    """
    # The index pairs each class with the type that carries it.
    return _BY_PAYLOAD[payload_type]  # type: ignore[return-value]


async def ensure_topics(
    options: KafkaOptions,
    topics: Sequence[EventType] = ALL,
    *,
    timeout_s: float = 30.0,
) -> None:
    """Create the topics of ``topics``; the ones that already exist are left as they are.

    Each topic gets ``options.kafka_partitions`` partitions and
    ``options.kafka_replication_factor`` replicas, and is named with
    ``options.kafka_topic_prefix``. Safe to call from every process at start-up. A
    routed type's other topics (other queues, other bands) are created on demand by
    :func:`ensure_task_topics`.

    Args:
        options: Broker address, partitions, replication factor, topic prefix.
        topics: Event types whose topics to create. Default: :data:`ALL`.
        timeout_s: Bound on the whole call. Default: 30 s.

    Raises:
        aiokafka.errors.KafkaError: When the broker refuses a topic for another
            reason than its existence, or cannot be reached.
        TimeoutError: When the call takes longer than ``timeout_s``.
    """
    names = {t.topic(options): options.kafka_partitions for t in topics}
    await _create_topics(options, names, timeout_s=timeout_s)


def queue_partitions(options: KafkaOptions, queue: str) -> int:
    """Partitions of ``queue``'s task topics (``kafka_queue_partitions``, else the default)."""
    return options.kafka_queue_partitions.get(queue, options.kafka_partitions)


async def ensure_task_topics(
    options: KafkaOptions, queues: Iterable[str], *, timeout_s: float = 30.0
) -> None:
    """Create the task topics of every band of ``queues`` (existing ones are left alone).

    Called by workers for the queues they serve when they start, and by the scheduler
    the first time it dispatches to a queue (before the records are written), so a
    topic always exists with its configured partitions: the local broker would
    auto-create it with its own default on first produce.

    Raises:
        aiokafka.errors.KafkaError: When the broker refuses a topic or cannot be reached.
        TimeoutError: When the call takes longer than ``timeout_s``.
    """
    names = {
        options.kafka_topic_prefix + topic: queue_partitions(options, queue)
        for queue in queues
        for topic in queue_topics(queue)
    }
    await _create_topics(options, names, timeout_s=timeout_s)


async def _create_topics(
    options: KafkaOptions, partitions: Mapping[str, int], *, timeout_s: float
) -> None:
    """Create the topics named in ``partitions`` (with their prefix) unless they exist."""
    # Imported here: aiokafka is the ``kafka`` extra, the type list is not.
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError, for_code

    if not partitions:
        return
    admin = AIOKafkaAdminClient(
        bootstrap_servers=options.kafka_bootstrap_servers,
        request_timeout_ms=options.kafka_request_timeout_ms,
        client_id="interlock-admin",
    )
    async with asyncio.timeout(timeout_s):
        await admin.start()
        try:
            response = await admin.create_topics(
                [
                    NewTopic(
                        name,
                        num_partitions=count,
                        replication_factor=options.kafka_replication_factor,
                    )
                    for name, count in partitions.items()
                ]
            )
        finally:
            await admin.close()
    created = []
    for topic, code, message, *_ in response.topic_errors:
        if code == 0:
            created.append(topic)
            continue
        error = for_code(code)
        if error is TopicAlreadyExistsError:
            continue
        raise error(f"cannot create topic {topic!r}: {message}")
    if created:
        _log.info(
            "created Kafka topics",
            extra={"topics": created, "partitions": [partitions[t] for t in created]},
        )
