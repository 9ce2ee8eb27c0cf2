"""The tracing helpers: a traceparent read as the W3C propagator reads it, one tracer."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from interlock.common.tracing import context_of, tracer

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"


def _propagated(traceparent: str, tracestate: str | None) -> trace.SpanContext:
    carrier = {"traceparent": traceparent}
    if tracestate is not None:
        carrier["tracestate"] = tracestate
    extracted = TraceContextTextMapPropagator().extract(carrier, context=Context())
    return trace.get_current_span(extracted).get_span_context()


@pytest.mark.parametrize(
    ("traceparent", "tracestate"),
    [
        (f"00-{TRACE_ID}-b7ad6b7169203331-01", None),
        (f"00-{TRACE_ID}-b7ad6b7169203331-00", None),
        (f"00-{TRACE_ID}-b7ad6b7169203331-01", "vendor=value,other=1"),
        (f"00-{TRACE_ID}-0000000000000000-01", None),
        (f"00-{'0' * 32}-b7ad6b7169203331-01", None),
        (f"00-{TRACE_ID.upper()}-b7ad6b7169203331-01", None),
        (f"00-{TRACE_ID}-b7ad6b7169203331-1", None),
        (f"00_{TRACE_ID}-b7ad6b7169203331-01", None),
        ("garbage", None),
        ("", None),
    ],
)
def test_a_traceparent_gives_the_context_the_propagator_extracts(
    traceparent: str, tracestate: str | None
) -> None:
    ours = trace.get_current_span(context_of(traceparent, tracestate)).get_span_context()
    assert ours == _propagated(traceparent, tracestate)
    assert ours.trace_state == _propagated(traceparent, tracestate).trace_state
    assert ours.is_remote == _propagated(traceparent, tracestate).is_remote


def test_no_traceparent_gives_an_empty_context() -> None:
    assert not trace.get_current_span(context_of(None)).get_span_context().is_valid


def test_the_tracer_is_made_once() -> None:
    assert tracer() is tracer()
