"""The spans of one attempt: the worker's hop of its run's trace."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from opentelemetry.trace import SpanKind

from interlock.common.event_spans import event_attributes, is_sampled
from interlock.common.tracing import context_of, traceparent_of, tracer
from interlock.worker.attempts import Attempt


@contextlib.contextmanager
def attempt_spans(attempt: Attempt) -> Iterator[None]:
    """Trace ``attempt`` while its executor runs (``execute <type>`` in its ``process``).

    The worker fetches records itself (not through ``EventConsumer``), so it makes its
    consumer span here, where the attempt starts; the executor span is current, so the
    task's log lines carry its trace id, and the attempt's outcome event continues the
    chain from it (:attr:`Attempt.traceparent`).
    """
    event = attempt.event
    if not is_sampled(event.traceparent):
        yield
        return
    attributes = event_attributes(event)
    with (
        tracer().start_as_current_span(
            f"{event.type.name} process",
            context=context_of(event.traceparent, event.tracestate),
            kind=SpanKind.CONSUMER,
            attributes={**attributes, "messaging.operation.type": "process"},
        ),
        tracer().start_as_current_span(
            f"execute {attempt.scheduled.type}",
            attributes={**attributes, "interlock.task_type": attempt.scheduled.type},
        ) as executing,
    ):
        attempt.traceparent = traceparent_of(executing)
        yield
