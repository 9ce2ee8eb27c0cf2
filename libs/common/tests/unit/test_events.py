import dataclasses
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from interlock.common import topics
from interlock.common.errors import EventDecodeError, MalformedEventError, UnknownEventTypeError
from interlock.common.events import Event, KafkaRecord, is_type
from interlock.events.v1 import task_pb2, workflow_pb2

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def scheduled(**overrides: object) -> Event[task_pb2.TaskScheduled]:
    fields: dict[str, object] = {
        "type": topics.TASK_SCHEDULED,
        "payload": task_pb2.TaskScheduled(task_id="fetch", attempt=2, type="http"),
        "tenant": "tenant-1",
        "run_id": "run-1",
        "source": "scheduler",
        "id": "11111111-2222-3333-4444-555555555555",
        "time": datetime(2025, 3, 4, 5, 6, 7, 123456, tzinfo=UTC),
        "traceparent": TRACEPARENT,
        "tracestate": "vendor=abc",
    }
    fields.update(overrides)
    return Event(**fields)  # type: ignore[arg-type]


def test_record_follows_the_cloudevents_kafka_binary_binding() -> None:
    record = scheduled().to_record()

    assert record.topic == "task.scheduled"
    assert record.key == b"run-1"
    assert (
        record.value
        == task_pb2.TaskScheduled(task_id="fetch", attempt=2, type="http").SerializeToString()
    )
    assert record.headers == (
        ("ce_specversion", b"1.0"),
        ("ce_id", b"11111111-2222-3333-4444-555555555555"),
        ("ce_type", b"io.interlock.task.scheduled.v1"),
        ("ce_source", b"scheduler"),
        ("ce_time", b"2025-03-04T05:06:07.123456Z"),
        ("content-type", b"application/protobuf"),
        ("ce_tenant", b"tenant-1"),
        ("ce_runid", b"run-1"),
        ("ce_traceparent", TRACEPARENT.encode()),
        ("ce_tracestate", b"vendor=abc"),
    )


def test_round_trip_keeps_every_attribute() -> None:
    event = scheduled()
    decoded = Event.from_record(event.to_record())
    assert decoded == event
    assert decoded.type is topics.TASK_SCHEDULED
    assert isinstance(decoded.payload, task_pb2.TaskScheduled)


def test_key_can_be_overridden_and_survives_the_round_trip() -> None:
    event = scheduled(key="fetch#2")
    record = event.to_record()
    assert record.key == b"fetch#2"
    assert Event.from_record(record).key == "fetch#2"
    assert Event.from_record(record).run_id == "run-1"


def test_defaults_fill_id_time_and_no_trace_outside_a_span() -> None:
    before = datetime.now(UTC)
    event = Event(
        type=topics.WORKFLOW_STARTED,
        payload=workflow_pb2.WorkflowStarted(workflow_name="etl"),
        tenant="t",
        run_id="r",
        source="workflow",
    )
    assert uuid.UUID(event.id).version == 4
    assert before <= event.time <= datetime.now(UTC)
    assert event.traceparent is None and event.tracestate is None
    headers = dict(event.to_record().headers)
    assert "ce_traceparent" not in headers and "ce_tracestate" not in headers
    assert Event.from_record(event.to_record()) == event


def test_trace_context_is_taken_from_the_current_span_and_carried() -> None:
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("publish") as span:
        event = Event(
            type=topics.TASK_STARTED,
            payload=task_pb2.TaskStarted(task_id="a"),
            tenant="t",
            run_id="r",
            source="worker",
        )
    context = span.get_span_context()
    flags = f"{context.trace_flags:02x}"
    assert event.traceparent == f"00-{context.trace_id:032x}-{context.span_id:016x}-{flags}"

    decoded = Event.from_record(event.to_record())
    remote = trace.get_current_span(decoded.trace_context()).get_span_context()
    assert remote.is_remote
    assert remote.trace_id == context.trace_id
    assert remote.span_id == context.span_id


def test_time_is_stored_in_utc() -> None:
    local = datetime(2025, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    event = scheduled(time=local)
    assert event.time == local
    assert event.time.tzinfo is UTC
    assert dict(event.to_record().headers)["ce_time"] == b"2025-01-01T10:00:00.000000Z"


def test_invalid_events_are_refused() -> None:
    with pytest.raises(TypeError):
        scheduled(payload=task_pb2.TaskStarted())
    with pytest.raises(ValueError, match="run_id"):
        scheduled(run_id="")
    with pytest.raises(ValueError, match="timezone"):
        scheduled(time=datetime(2025, 1, 1))


def replace_header(record: KafkaRecord, name: str, value: bytes | None) -> KafkaRecord:
    headers = tuple((n, v) for n, v in record.headers if n != name)
    if value is not None:
        headers += ((name, value),)
    return dataclasses.replace(record, headers=headers)


@pytest.mark.parametrize(
    ("header", "value", "message"),
    [
        ("ce_id", None, "ce_id"),
        ("ce_source", None, "ce_source"),
        ("ce_time", None, "ce_time"),
        ("ce_tenant", None, "ce_tenant"),
        ("ce_runid", None, "ce_runid"),
        ("ce_specversion", None, "ce_specversion"),
        ("ce_specversion", b"0.3", "ce_specversion"),
        ("ce_time", b"yesterday", "RFC 3339"),
        ("ce_time", b"2025-01-01T10:00:00", "UTC offset"),
        ("content-type", b"application/json", "content-type"),
        ("ce_tenant", b"\xff\xfe", "UTF-8"),
    ],
)
def test_malformed_headers_raise_malformed_event_error(
    header: str, value: bytes | None, message: str
) -> None:
    record = replace_header(scheduled().to_record(), header, value)
    with pytest.raises(MalformedEventError, match=message):
        Event.from_record(record)


def test_repeated_header_is_malformed() -> None:
    record = scheduled().to_record()
    record = dataclasses.replace(record, headers=(*record.headers, ("ce_id", b"other")))
    with pytest.raises(MalformedEventError, match="repeats"):
        Event.from_record(record)


def test_undecodable_or_missing_value_is_malformed() -> None:
    record = scheduled().to_record()
    with pytest.raises(MalformedEventError, match="TaskScheduled"):
        Event.from_record(dataclasses.replace(record, value=b"\xff\xff\xff"))
    with pytest.raises(MalformedEventError, match="no value"):
        Event.from_record(dataclasses.replace(record, value=None))


def test_unknown_type_raises_unknown_event_type_error() -> None:
    record = replace_header(scheduled().to_record(), "ce_type", b"io.interlock.task.scheduled.v9")
    with pytest.raises(UnknownEventTypeError) as raised:
        Event.from_record(record)
    assert raised.value.cloudevents_type == "io.interlock.task.scheduled.v9"
    assert isinstance(raised.value, EventDecodeError)


def test_content_type_parameters_and_missing_content_type_are_accepted() -> None:
    record = scheduled().to_record()
    with_params = replace_header(record, "content-type", b"application/protobuf; proto=x")
    assert Event.from_record(with_params) == scheduled()
    assert Event.from_record(replace_header(record, "content-type", None)) == scheduled()


def test_foreign_headers_are_ignored() -> None:
    record = scheduled().to_record()
    record = dataclasses.replace(record, headers=(*record.headers, ("x-other", b"\xff")))
    assert Event.from_record(record) == scheduled()


def test_is_type_tells_the_event_type() -> None:
    event: Event = scheduled()
    assert is_type(event, topics.TASK_SCHEDULED)
    assert not is_type(event, topics.TASK_STARTED)


def test_trace_headers_match_what_the_w3c_propagator_writes() -> None:
    parent = trace.SpanContext(
        trace_id=0x1234,
        span_id=0x5678,
        is_remote=True,
        trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED),
        trace_state=trace.TraceState([("vendor", "abc")]),
    )
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span(
        "publish", context=trace.set_span_in_context(trace.NonRecordingSpan(parent))
    ):
        expected: dict[str, str] = {}
        TraceContextTextMapPropagator().inject(expected)
        event = Event(
            type=topics.TASK_STARTED,
            payload=task_pb2.TaskStarted(task_id="a"),
            tenant="t",
            run_id="r",
            source="worker",
        )
    assert event.traceparent == expected["traceparent"]
    assert event.tracestate == expected["tracestate"] == "vendor=abc"
