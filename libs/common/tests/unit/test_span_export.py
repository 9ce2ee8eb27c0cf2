"""Span export: the hand-written encoding decodes to what the SDK's encoder builds."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as sdk_encode
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, StatusCode

from interlock.common.span_export import WireSpanExporter, encode_spans
from interlock.common.tracing import context_of

REMOTE_PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def _finished(provider: TracerProvider) -> list[ReadableSpan]:
    """Spans of every shape a service makes, from ``provider``'s tracers."""
    kept = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(kept))
    tracer = provider.get_tracer("interlock")
    other = provider.get_tracer("fastapi", "0.1", schema_url="https://opentelemetry.io/schemas/1")
    with tracer.start_as_current_span(
        "POST /runs",
        kind=SpanKind.SERVER,
        attributes={
            "interlock.run_id": "run-1",
            "interlock.attempt": 2,
            "negative": -5,
            "flag": False,
            "ratio": 0.25,
            "empty": "",
            "tags": ("a", "b"),
            "counts": [1, 2],
        },
    ) as root:
        with tracer.start_as_current_span("execute noop") as child:
            child.add_event("retrying", {"attempt": 1})
        with pytest.raises(ValueError), tracer.start_as_current_span("fails"):
            raise ValueError("bad input")
        other.start_span("GET", links=[Link(root.get_span_context(), {"why": "batch"})]).end()
    consumer = tracer.start_span(
        "task.scheduled process",
        context=context_of(REMOTE_PARENT, "vendor=value,other=1"),
        kind=SpanKind.CONSUMER,
        attributes={"messaging.system": "kafka", "interlock.tenant": "tenant-1"},
    )
    consumer.set_status(StatusCode.ERROR, "TimeoutError")
    consumer.end()
    return list(kept.get_finished_spans())


@pytest.fixture
def spans() -> list[ReadableSpan]:
    first = _finished(TracerProvider(resource=Resource.create({"service.name": "worker"})))
    second = _finished(TracerProvider(resource=Resource.create({"service.name": "scheduler"})))
    return first + second


def test_the_encoding_decodes_to_the_sdk_encoders_request(spans: list[ReadableSpan]) -> None:
    ours = ExportTraceServiceRequest.FromString(encode_spans(spans))
    assert ours == sdk_encode(spans)
    assert len(ours.resource_spans) == 2
    assert [len(group.scope_spans) for group in ours.resource_spans] == [2, 2]


def test_the_encoding_stays_the_same_when_attributes_come_from_the_cache(
    spans: list[ReadableSpan],
) -> None:
    exporter_encoding = WireSpanExporter(endpoint="http://127.0.0.1:9/v1/traces")._encoder
    first = exporter_encoding.request(spans)
    assert exporter_encoding.request(spans) == first
    assert ExportTraceServiceRequest.FromString(first) == sdk_encode(spans)


def test_a_true_attribute_and_a_one_are_not_taken_for_each_other() -> None:
    provider = TracerProvider()
    kept = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(kept))
    tracer = provider.get_tracer("interlock")
    tracer.start_span("a", attributes={"value": True}).end()
    tracer.start_span("b", attributes={"value": 1}).end()
    spans = list(kept.get_finished_spans())
    assert ExportTraceServiceRequest.FromString(encode_spans(spans)) == sdk_encode(spans)


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[bytes]]]:
    bodies: list[bytes] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            bodies.append(self.rfile.read(int(self.headers["content-length"])))
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/v1/traces", bodies
    finally:
        server.shutdown()


def test_the_exporter_posts_the_encoding_through_the_sdks_client(
    spans: list[ReadableSpan], receiver: tuple[str, list[bytes]]
) -> None:
    url, bodies = receiver
    exporter = WireSpanExporter(endpoint=url)
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    (body,) = bodies
    assert ExportTraceServiceRequest.FromString(body) == sdk_encode(spans)
