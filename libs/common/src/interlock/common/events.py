"""The event envelope and its Kafka form (CloudEvents Kafka protocol binding, binary mode).

An :class:`Event` is a typed protobuf payload plus the envelope every Interlock event
carries: a unique id, its type, the time, tenant, run id, the emitting service and the
W3C trace context. On Kafka the envelope travels in headers and the payload is the
record value::

    key           run id (or Event.key when set, e.g. to spread worker load)
    value         payload.SerializeToString()
    headers       ce_specversion  "1.0"
                  ce_id           event id (a UUID unless the producer chose another)
                  ce_type         "io.interlock.<event>.v<version>"
                  ce_source       emitting service, e.g. "scheduler"
                  ce_time         RFC 3339 UTC time, microseconds, "Z"
                  content-type    "application/protobuf"
                  ce_tenant       tenant id                   (extension)
                  ce_runid        run id                      (extension)
                  ce_traceparent  W3C traceparent, when any   (distributed tracing extension)
                  ce_tracestate   W3C tracestate, when any    (distributed tracing extension)

Example::

    event = Event(
        type=topics.TASK_SCHEDULED,
        payload=task_pb2.TaskScheduled(task_id="fetch", attempt=1),
        tenant=tenant_id,
        run_id=run_id,
        source="scheduler",
    )
    record = event.to_record()
    assert Event.from_record(record) == event
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Generic, TypeGuard

from google.protobuf.message import DecodeError, Message
from opentelemetry.context import Context
from opentelemetry.trace import SpanContext, get_current_span
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from typing_extensions import TypeVar

from interlock.common import topics
from interlock.common.errors import MalformedEventError, UnknownEventTypeError
from interlock.common.topics import EventType

__all__ = [
    "CONTENT_TYPE",
    "SPEC_VERSION",
    "Event",
    "KafkaRecord",
    "is_type",
    "new_event_id",
]

SPEC_VERSION = "1.0"
"""CloudEvents specification version written to ``ce_specversion``."""
CONTENT_TYPE = "application/protobuf"
"""Media type of every record value, written to ``content-type``."""

_ACCEPTED_CONTENT_TYPES = frozenset({CONTENT_TYPE, "application/x-protobuf"})
_REQUIRED = ("ce_specversion", "ce_id", "ce_type", "ce_source", "ce_time", "ce_tenant", "ce_runid")
_PROPAGATOR = TraceContextTextMapPropagator()
_SPEC_VERSION_BYTES = SPEC_VERSION.encode()
_CONTENT_TYPE_BYTES = CONTENT_TYPE.encode()

P_co = TypeVar("P_co", bound=Message, covariant=True, default=Message)
P = TypeVar("P", bound=Message)


def new_event_id() -> str:
    """Return a fresh event id (a random UUID, canonical text form)."""
    return str(uuid.uuid4())


def _now() -> datetime:
    return datetime.now(UTC)


def _current_span_context() -> SpanContext | None:
    # What TraceContextTextMapPropagator.inject writes, read without a carrier: every
    # event is built on a hot path.
    context = get_current_span().get_span_context()
    return context if context.is_valid else None


def _current_traceparent() -> str | None:
    context = _current_span_context()
    if context is None:
        return None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"


def _current_tracestate() -> str | None:
    context = _current_span_context()
    return context.trace_state.to_header() or None if context is not None else None


def _format_time(time: datetime) -> str:
    # isoformat is several times cheaper than strftime; the time is in UTC already.
    return time.isoformat(timespec="microseconds").removesuffix("+00:00") + "Z"


@dataclass(frozen=True, slots=True)
class KafkaRecord:
    """A Kafka record in the shape the binding needs, independent of the client library.

    Attributes:
        topic: Topic name. :meth:`Event.to_record` writes the event type's name
            (a routed type's: the topic its payload routes to) without
            ``kafka_topic_prefix`` (the publisher adds it); consumers pass the
            topic the record came from, used in error messages only.
        key: Record key, or ``None``.
        value: Record value, or ``None`` for a tombstone (never a valid event).
        headers: Header names and values, in record order.
    """

    topic: str
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class Event(Generic[P_co]):
    """One event: a typed protobuf payload in the CloudEvents envelope.

    Attributes:
        type: The event type, from :mod:`interlock.common.topics`.
        payload: The protobuf message; must be an instance of ``type.payload_type``.
        tenant: Tenant the run belongs to. Must not be empty.
        run_id: The run the event is about. Must not be empty.
        source: Name of the emitting service, e.g. ``"scheduler"``. Must not be empty.
        id: Unique event id; consumers deduplicate on it. Default: a new random UUID.
        time: When the event happened; stored in UTC. Default: now.
        traceparent: W3C ``traceparent``. Default: taken from the current OpenTelemetry
            context (``None`` when no span is active).
        tracestate: W3C ``tracestate``. Default: taken from the current context.
        key: Record key when it should not be the run id (e.g. a task id, to spread
            worker load across partitions). Default: ``None``, meaning the run id.
    """

    type: EventType[P_co]
    payload: P_co
    tenant: str
    run_id: str
    source: str
    id: str = field(default_factory=new_event_id)
    time: datetime = field(default_factory=_now)
    traceparent: str | None = field(default_factory=_current_traceparent)
    tracestate: str | None = field(default_factory=_current_tracestate)
    key: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.payload, self.type.payload_type):
            raise TypeError(
                f"{self.type.name} carries {self.type.payload_type.__name__}, "
                f"not {type(self.payload).__name__}"
            )
        for name in ("id", "tenant", "run_id", "source"):
            if not getattr(self, name):
                raise ValueError(f"event {name} must not be empty")
        if self.time.tzinfo is None or self.time.utcoffset() is None:
            raise ValueError("event time must be timezone-aware")
        if self.time.tzinfo is not UTC:
            object.__setattr__(self, "time", self.time.astimezone(UTC))

    @property
    def partition_key(self) -> bytes:
        """The record key: :attr:`key` when set, else :attr:`run_id`, UTF-8 encoded."""
        return (self.key if self.key is not None else self.run_id).encode()

    def trace_context(self) -> Context:
        """Return the OpenTelemetry context this event carries.

        Use it as the parent (or a link) of the span that handles the event.

        Returns:
            A context holding the remote span, or an empty context when the event
            carries no trace.
        """
        carrier = {}
        if self.traceparent:
            carrier["traceparent"] = self.traceparent
            if self.tracestate:
                carrier["tracestate"] = self.tracestate
        return _PROPAGATOR.extract(carrier, context=Context())

    def to_record(self) -> KafkaRecord:
        """Encode this event as a Kafka record (binary content mode).

        Returns:
            The record, its topic being the event type's name (or the topic a routed
            type's payload goes to) without prefix.
        """
        headers = [
            ("ce_specversion", _SPEC_VERSION_BYTES),
            ("ce_id", self.id.encode()),
            ("ce_type", self.type.cloudevents_type.encode()),
            ("ce_source", self.source.encode()),
            ("ce_time", _format_time(self.time).encode()),
            ("content-type", _CONTENT_TYPE_BYTES),
            ("ce_tenant", self.tenant.encode()),
            ("ce_runid", self.run_id.encode()),
        ]
        if self.traceparent:
            headers.append(("ce_traceparent", self.traceparent.encode()))
        if self.tracestate:
            headers.append(("ce_tracestate", self.tracestate.encode()))
        route = self.type.route
        return KafkaRecord(
            topic=self.type.name if route is None else route(self.payload),
            key=self.partition_key,
            value=self.payload.SerializeToString(),
            headers=tuple(headers),
        )

    @staticmethod
    def from_record(record: KafkaRecord) -> Event:
        """Decode a Kafka record written by :meth:`to_record`.

        Any producer following the binding with Interlock's types works as well.
        Headers other than the ones :meth:`to_record` writes are ignored.

        Args:
            record: The record.

        Returns:
            The event, its payload parsed into the type's message class.

        Raises:
            UnknownEventTypeError: ``ce_type`` names no known event type.
            MalformedEventError: A required header is missing, repeated, not UTF-8 or
                invalid; the content type is not protobuf; the value is missing or
                does not parse.
        """
        topic = record.topic
        headers: dict[str, str] = {}
        for name, raw in record.headers:
            if not (name.startswith("ce_") or name == "content-type"):
                continue
            if name in headers:
                raise MalformedEventError(f"header {name} repeats", topic=topic)
            try:
                headers[name] = (raw if isinstance(raw, bytes) else bytes(raw)).decode()
            except (UnicodeDecodeError, TypeError) as error:
                raise MalformedEventError(f"header {name} is not UTF-8", topic=topic) from error
        missing = [name for name in _REQUIRED if not headers.get(name)]
        if missing:
            raise MalformedEventError(f"missing headers: {', '.join(missing)}", topic=topic)
        if headers["ce_specversion"] != SPEC_VERSION:
            raise MalformedEventError(
                f"unsupported ce_specversion {headers['ce_specversion']!r}", topic=topic
            )
        event_type = topics.by_cloudevents_type(headers["ce_type"])
        if event_type is None:
            raise UnknownEventTypeError(headers["ce_type"], topic=topic)
        content_type = headers.get("content-type")
        if content_type is not None:
            media_type = content_type.split(";", 1)[0].strip().lower()
            if media_type not in _ACCEPTED_CONTENT_TYPES:
                raise MalformedEventError(f"unsupported content-type {content_type!r}", topic=topic)
        try:
            time = datetime.fromisoformat(headers["ce_time"])
        except ValueError as error:
            raise MalformedEventError(
                f"ce_time {headers['ce_time']!r} is not RFC 3339", topic=topic
            ) from error
        if time.tzinfo is None:
            raise MalformedEventError(
                f"ce_time {headers['ce_time']!r} has no UTC offset", topic=topic
            )
        if record.value is None:
            raise MalformedEventError("record has no value", topic=topic)
        try:
            payload = event_type.parse(record.value)
        except DecodeError as error:
            raise MalformedEventError(
                f"value is not a {event_type.payload_type.__name__}", topic=topic
            ) from error
        run_id = headers["ce_runid"]
        key: str | None = None
        if record.key is not None and record.key != run_id.encode():
            try:
                key = record.key.decode()
            except UnicodeDecodeError as error:
                raise MalformedEventError("record key is not UTF-8", topic=topic) from error
        return Event(
            type=event_type,
            payload=payload,
            tenant=headers["ce_tenant"],
            run_id=run_id,
            source=headers["ce_source"],
            id=headers["ce_id"],
            time=time,
            traceparent=headers.get("ce_traceparent") or None,
            tracestate=headers.get("ce_tracestate") or None,
            key=key,
        )


def is_type(event: Event, event_type: EventType[P]) -> TypeGuard[Event[P]]:
    """Tell whether ``event`` is of ``event_type``, narrowing its payload's type.

    Example::

        for event in events:
            if is_type(event, topics.TASK_COMPLETED):
                output = event.payload.output_json  # a TaskCompleted

    Args:
        event: A consumed event.
        event_type: The type to test for.

    Returns:
        Whether the event's type is ``event_type``.
    """
    return event.type == event_type
