"""OpenTelemetry set-up shared by every service, and the attributes every span carries.

One run is one trace. Where its spans come from:

- REST: FastAPI's own HTTP server span (``create_app``), parented from a ``traceparent``
  the caller sent, else a new trace.
- Kafka: :mod:`interlock.common.event_spans` (a producer span per record the outbox
  relay publishes, a consumer span per event a consumer handles).
- gRPC: :mod:`interlock.common.grpc_tracing` (client and server interceptors).
- Services: the scheduler keeps each run's trace context with the run, the worker
  makes an executor span per attempt.

Spans name the run with the ``interlock.*`` attributes below (:func:`run_attributes`),
and leave over OTLP/HTTP through :mod:`interlock.common.span_export`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry._logs import set_logger_provider
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    Span,
    SpanContext,
    TraceFlags,
    TraceState,
    set_span_in_context,
)
from opentelemetry.util.types import AttributeValue

from interlock.common.span_export import WireSpanExporter

__all__ = [
    "ATTEMPT",
    "RUN_ID",
    "TASK_ID",
    "TENANT",
    "WORKFLOW",
    "Telemetry",
    "configure_tracing",
    "context_of",
    "run_attributes",
    "start_run_trace",
    "traceparent_of",
    "tracer",
]

RUN_ID = "interlock.run_id"
TASK_ID = "interlock.task_id"
ATTEMPT = "interlock.attempt"
TENANT = "interlock.tenant"
WORKFLOW = "interlock.workflow"

_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
"""A version-00 W3C ``traceparent``: trace id, parent span id, flags."""

_TRACER = trace.get_tracer("interlock")
"""Made once: asking the provider for a tracer costs about half as much as a span.
Made before :func:`configure_tracing` ran, it is a proxy that finds the global
provider's tracer on first use."""


def tracer() -> trace.Tracer:
    """Interlock's tracer (the global provider's, once :func:`configure_tracing` ran)."""
    return _TRACER


@dataclass(frozen=True)
class Telemetry:
    """The providers :func:`configure_tracing` installed; shut them down on exit."""

    traces: TracerProvider
    logs: LoggerProvider | None

    def shutdown(self) -> None:
        """Flush what is pending and stop exporting."""
        self.traces.shutdown()
        if self.logs is not None:
            self.logs.shutdown()


def configure_tracing(
    service: str, *, otlp_endpoint: str | None = None, sample_ratio: float = 0.1
) -> Telemetry:
    """Install a global tracer provider named after the service; ship logs when exporting.

    Spans are always created, so log lines carry trace ids and the W3C trace context
    propagates through events; they are exported only when an OTLP endpoint is given,
    and then every log record goes to the same endpoint too (``/v1/logs``).

    Args:
        service: The ``service.name`` resource attribute.
        otlp_endpoint: Base URL of an OTLP/HTTP collector, e.g.
            ``http://otel-collector:4318``. Default: none (no export).
        sample_ratio: Share of new traces recorded; a span with a parent follows its
            parent's decision, so a run is traced whole or not at all. Default: 0.1.

    Returns:
        The providers, so the caller can shut them down (flushing spans) on exit.
    """
    resource = Resource.create({SERVICE_NAME: service})
    provider = TracerProvider(
        resource=resource, sampler=ParentBased(root=TraceIdRatioBased(sample_ratio))
    )
    logs: LoggerProvider | None = None
    if otlp_endpoint:
        base = otlp_endpoint.rstrip("/")
        provider.add_span_processor(
            BatchSpanProcessor(WireSpanExporter(endpoint=f"{base}/v1/traces"))
        )
        logs = LoggerProvider(resource=resource)
        logs.add_log_record_processor(
            BatchLogRecordProcessor(OTLPLogExporter(endpoint=f"{base}/v1/logs"))
        )
        set_logger_provider(logs)
        logging.getLogger().addHandler(LoggingHandler(logger_provider=logs))
    trace.set_tracer_provider(provider)
    return Telemetry(traces=provider, logs=logs)


def run_attributes(
    *,
    run_id: str | None = None,
    tenant: str | None = None,
    task_id: str | None = None,
    attempt: int | None = None,
    workflow: str | None = None,
) -> dict[str, AttributeValue]:
    """The ``interlock.*`` span attributes naming a run (and a task), empty ones left out."""
    values: Mapping[str, AttributeValue | None] = {
        RUN_ID: run_id,
        TENANT: tenant,
        TASK_ID: task_id,
        ATTEMPT: attempt or None,
        WORKFLOW: workflow,
    }
    return {name: value for name, value in values.items() if value is not None and value != ""}


def start_run_trace(
    *, run_id: str, tenant: str, workflow: str, own_trace: bool = False
) -> str | None:
    """Mark a run's start in the current trace; return the context its start event carries.

    A run started alone belongs to the request's trace: the current span (the REST
    span) gets the run's attributes. A run is one trace, so each run of a batch start
    gets a trace of its own instead: a ``run start`` root span (sampled like any new
    trace) linked to the request's span.

    Args:
        run_id: The new run.
        tenant: Its tenant.
        workflow: Its workflow's name.
        own_trace: Start a trace of its own. Default: stay in the current one.

    Returns:
        The W3C ``traceparent``, or ``None`` when there is no span.
    """
    attributes = run_attributes(run_id=run_id, tenant=tenant, workflow=workflow)
    current = trace.get_current_span()
    if not own_trace:
        current.set_attributes(attributes)
        return traceparent_of(current)
    request = current.get_span_context()
    span = tracer().start_span(
        "run start",
        context=Context(),
        links=[Link(request)] if request.is_valid else None,
        attributes=attributes,
    )
    span.end()
    return traceparent_of(span)


def traceparent_of(span: Span) -> str | None:
    """The W3C ``traceparent`` naming ``span``, or ``None`` for an invalid span."""
    context = span.get_span_context()
    if not context.is_valid:
        return None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"


def context_of(traceparent: str | None, tracestate: str | None = None) -> Context:
    """The context whose (remote) current span is the one ``traceparent`` names.

    What ``TraceContextTextMapPropagator.extract`` returns for a version-00 header
    (the version every Interlock service writes), for a third of its cost: every
    traced hop parses one.

    Args:
        traceparent: A W3C ``traceparent``; anything malformed gives an empty context.
        tracestate: Its ``tracestate``, when any.

    Returns:
        A context to parent a span from, or an empty one.
    """
    parsed = _TRACEPARENT.fullmatch(traceparent) if traceparent else None
    if parsed is None:
        return Context()
    trace_id, span_id = int(parsed[1], 16), int(parsed[2], 16)
    if not trace_id or not span_id:
        return Context()
    span = SpanContext(
        trace_id,
        span_id,
        is_remote=True,
        trace_flags=TraceFlags(int(parsed[3], 16)),
        trace_state=TraceState.from_header([tracestate]) if tracestate else None,
    )
    return set_span_in_context(NonRecordingSpan(span), Context())
