"""OpenTelemetry tracing set-up shared by every service."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor


def configure_tracing(service: str, *, otlp_endpoint: str | None = None) -> TracerProvider:
    """Install a global tracer provider named after the service.

    Spans are always created, so log lines carry trace ids and the W3C trace
    context propagates through events; they are exported only when an OTLP
    endpoint is given.

    Args:
        service: The ``service.name`` resource attribute.
        otlp_endpoint: Base URL of an OTLP/HTTP collector, e.g.
            ``http://otel-collector:4318``. Default: none (no export).

    Returns:
        The provider, so the caller can shut it down (flushing spans) on exit.
    """
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))
    if otlp_endpoint:
        exporter = OTLPSpanExporter(endpoint=f"{otlp_endpoint.rstrip('/')}/v1/traces")
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider
