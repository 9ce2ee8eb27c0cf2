"""The spans around Kafka: each hop parented from the event's context, passing its own on."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from interlock.common import topics
from interlock.common.event_spans import consuming, is_sampled, publishing, traced_handler
from interlock.common.events import Event
from interlock.common.tracing import start_run_trace, traceparent_of, tracer
from interlock.events.v1 import task_pb2

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
SAMPLED = f"00-{TRACE_ID}-b7ad6b7169203331-01"
UNSAMPLED = f"00-{TRACE_ID}-b7ad6b7169203331-00"


@pytest.fixture
def exported() -> Iterator[InMemorySpanExporter]:
    """The spans ended during the test (the global provider is set once per process)."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    processor = SimpleSpanProcessor(exporter)
    provider.add_span_processor(processor)
    yield exporter
    processor.shutdown()


def scheduled(traceparent: str | None, *, run_id: str = "run-1") -> Event:
    return Event(
        type=topics.TASK_SCHEDULED,
        payload=task_pb2.TaskScheduled(task_id="fetch", attempt=2, type="http"),
        tenant="tenant-1",
        run_id=run_id,
        source="scheduler",
        time=datetime(2025, 3, 4, tzinfo=UTC),
        traceparent=traceparent,
    )


def only(exporter: InMemorySpanExporter) -> ReadableSpan:
    (span,) = exporter.get_finished_spans()
    return span


def test_a_consumed_event_gets_a_consumer_span_parented_from_its_traceparent(
    exported: InMemorySpanExporter,
) -> None:
    with consuming([scheduled(SAMPLED)], group="worker") as (event,):
        assert trace.get_current_span().get_span_context().trace_id == int(TRACE_ID, 16)
    span = only(exported)
    assert span.name == "task.scheduled process"
    assert span.kind is SpanKind.CONSUMER
    assert span.parent is not None and span.parent.span_id == 0xB7AD6B7169203331
    assert span.context.trace_id == int(TRACE_ID, 16)
    assert event.traceparent == f"00-{TRACE_ID}-{span.context.span_id:016x}-01"
    attributes = dict(span.attributes or {})
    assert attributes["interlock.run_id"] == "run-1"
    assert attributes["interlock.tenant"] == "tenant-1"
    assert attributes["interlock.task_id"] == "fetch"
    assert attributes["interlock.attempt"] == 2
    assert attributes["messaging.consumer.group.name"] == "worker"


def test_unsampled_and_untraced_events_pass_unchanged_and_make_no_span(
    exported: InMemorySpanExporter,
) -> None:
    events = [scheduled(UNSAMPLED), scheduled(None)]
    with consuming(events, group="worker") as passed:
        assert passed == events
    assert exported.get_finished_spans() == ()


def test_a_failed_batch_ends_each_events_span_as_an_error(exported: InMemorySpanExporter) -> None:
    async def refuse(events: Sequence[Event]) -> None:
        raise RuntimeError("database down")

    async def consume() -> None:
        handler = traced_handler(refuse, group="scheduler")
        await handler([scheduled(SAMPLED, run_id="a"), scheduled(SAMPLED, run_id="b")])

    with pytest.raises(RuntimeError):
        asyncio.run(consume())
    spans = exported.get_finished_spans()
    assert len(spans) == 2
    assert {s.status.is_ok for s in spans} == {False}


def test_a_relayed_record_leaves_with_its_producer_spans_traceparent(
    exported: InMemorySpanExporter,
) -> None:
    record = scheduled(SAMPLED).to_record()
    with publishing([record]) as (sent,):
        pass
    span = only(exported)
    assert span.kind is SpanKind.PRODUCER
    assert span.name == "task.scheduled publish"
    assert span.parent is not None and span.parent.span_id == 0xB7AD6B7169203331
    headers = dict(sent.headers)
    assert headers["ce_traceparent"].decode() == f"00-{TRACE_ID}-{span.context.span_id:016x}-01"
    assert [name for name, _ in sent.headers] == [name for name, _ in record.headers]
    assert dict(span.attributes or {})["interlock.run_id"] == "run-1"


def test_sampled_is_read_from_the_flags() -> None:
    assert is_sampled(SAMPLED)
    assert not is_sampled(UNSAMPLED)
    assert not is_sampled(None)
    assert not is_sampled("garbage")


def test_traceparent_of_an_invalid_span_is_none() -> None:
    assert traceparent_of(trace.INVALID_SPAN) is None


def test_a_run_started_alone_is_in_the_requests_trace(exported: InMemorySpanExporter) -> None:
    with tracer().start_as_current_span("POST /runs") as request:
        context = start_run_trace(run_id="r1", tenant="t1", workflow="wf")
    assert context == traceparent_of(request)
    assert dict(only(exported).attributes or {})["interlock.run_id"] == "r1"


def test_each_run_of_a_batch_gets_a_trace_of_its_own_linked_to_the_request(
    exported: InMemorySpanExporter,
) -> None:
    with tracer().start_as_current_span("POST /runs:batch") as request:
        first = start_run_trace(run_id="r1", tenant="t1", workflow="wf", own_trace=True)
        second = start_run_trace(run_id="r2", tenant="t1", workflow="wf", own_trace=True)
    roots = [s for s in exported.get_finished_spans() if s.name == "run start"]
    assert [s.parent for s in roots] == [None, None]
    assert {first, second} == {
        f"00-{s.context.trace_id:032x}-{s.context.span_id:016x}-{s.context.trace_flags:02x}"
        for s in roots
    }
    request_trace = request.get_span_context().trace_id
    assert all(s.context.trace_id != request_trace for s in roots)
    assert all(s.links[0].context.span_id == request.get_span_context().span_id for s in roots)
