"""Spans around Kafka: how a run's trace crosses the broker.

An event carries its trace context in ``ce_traceparent``. Each hop makes a span
parented from it and passes its own span on, so a run's spans form one chain::

    REST span ─ outbox row ─ relay PRODUCER span ─ consumer CONSUMER span ─ events it causes ─ ...

- :func:`publishing`: the outbox relay's ``<topic> publish`` span per record, open
  until the broker acknowledged the batch; the record leaves with the span's
  ``traceparent``.
- :func:`consuming`: a consumer's ``<topic> process`` span per event, open while its
  batch is handled; the handler sees the event with the span's ``traceparent``, so an
  event it causes (copying its cause's context) continues the chain.

Only sampled contexts get spans: an unsampled event passes on its context untouched
(the whole run is then unsampled, at no cost).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Awaitable, Callable, Iterator, Sequence

from google.protobuf.message import Message
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, StatusCode
from opentelemetry.util.types import AttributeValue

from interlock.common.events import Event, KafkaRecord
from interlock.common.tracing import context_of, run_attributes, traceparent_of, tracer

__all__ = ["consuming", "event_attributes", "is_sampled", "publishing", "traced_handler"]

_TRACEPARENT = "ce_traceparent"


def is_sampled(traceparent: str | None) -> bool:
    """Whether ``traceparent`` names a sampled span (its run is traced)."""
    # version-traceid-spanid-flags: bit 0 of the flags is "sampled".
    return traceparent is not None and len(traceparent) == 55 and traceparent[-1] in "13579bdf"


def _field(payload: Message, name: str) -> object:
    return getattr(payload, name) if name in payload.DESCRIPTOR.fields_by_name else None


def event_attributes(event: Event) -> dict[str, AttributeValue]:
    """The span attributes of ``event``: run, tenant, and task and attempt when it has them."""
    attempt = _field(event.payload, "attempt")
    task_id = _field(event.payload, "task_id")
    workflow = _field(event.payload, "workflow_name")
    return {
        "messaging.system": "kafka",
        "messaging.message.id": event.id,
        **run_attributes(
            run_id=event.run_id,
            tenant=event.tenant,
            task_id=task_id if isinstance(task_id, str) else None,
            attempt=attempt if isinstance(attempt, int) else None,
            workflow=workflow if isinstance(workflow, str) else None,
        ),
    }


def _end(spans: Sequence[Span], error: BaseException | None) -> None:
    for span in spans:
        if error is not None:
            span.set_status(StatusCode.ERROR, type(error).__name__)
        span.end()


@contextlib.contextmanager
def consuming(events: Sequence[Event], *, group: str) -> Iterator[list[Event]]:
    """Open a ``<topic> process`` span per sampled event while the batch is handled.

    One span per event (not per batch): a batch mixes runs, and each run's trace must
    show its own hop. While the batch holds one traced event its span is current, so
    the handler's log lines carry its trace id.

    Args:
        events: The decoded batch.
        group: The consumer group, a span attribute.

    Yields:
        The events, each traced one carrying its span's ``traceparent`` instead.
    """
    spans: list[Span] = []
    traced: list[Event] = []
    for event in events:
        if not is_sampled(event.traceparent):
            traced.append(event)
            continue
        span = tracer().start_span(
            f"{event.type.name} process",
            context=context_of(event.traceparent, event.tracestate),
            kind=SpanKind.CONSUMER,
            attributes={
                **event_attributes(event),
                "messaging.operation.type": "process",
                "messaging.consumer.group.name": group,
            },
        )
        spans.append(span)
        traced.append(dataclasses.replace(event, traceparent=traceparent_of(span)))
    current = trace.use_span(spans[0]) if len(spans) == 1 else contextlib.nullcontext()
    try:
        with current:
            yield traced
    except BaseException as error:
        _end(spans, error)
        raise
    _end(spans, None)


def traced_handler(
    handler: Callable[[Sequence[Event]], Awaitable[None]], *, group: str
) -> Callable[[Sequence[Event]], Awaitable[None]]:
    """``handler``, each call of it inside :func:`consuming`'s spans."""

    async def handle(events: Sequence[Event]) -> None:
        with consuming(events, group=group) as traced:
            await handler(traced)

    return handle


_RECORD_HEADERS = frozenset({"ce_id", "ce_runid", "ce_tenant", "ce_tracestate"})
"""The headers a publish span reads (decoding the others would be wasted)."""


def _record_attributes(headers: dict[str, str], topic: str) -> dict[str, AttributeValue]:
    return {
        "messaging.system": "kafka",
        "messaging.operation.type": "send",
        "messaging.destination.name": topic,
        "messaging.message.id": headers.get("ce_id", ""),
        **run_attributes(run_id=headers.get("ce_runid"), tenant=headers.get("ce_tenant")),
    }


@contextlib.contextmanager
def publishing(records: Sequence[KafkaRecord]) -> Iterator[list[KafkaRecord]]:
    """Open a ``<topic> publish`` span per sampled record until the batch is acknowledged.

    Args:
        records: Records as the outbox stored them (their headers hold the context of
            the span that caused them).

    Yields:
        The records, each traced one carrying its publish span's ``traceparent``.
    """
    spans: list[Span] = []
    traced: list[KafkaRecord] = []
    for record in records:
        traceparent = next(
            (value.decode() for name, value in record.headers if name == _TRACEPARENT), None
        )
        if not is_sampled(traceparent):
            traced.append(record)
            continue
        headers = {
            name: value.decode() for name, value in record.headers if name in _RECORD_HEADERS
        }
        span = tracer().start_span(
            f"{record.topic} publish",
            context=context_of(traceparent, headers.get("ce_tracestate")),
            kind=SpanKind.PRODUCER,
            attributes=_record_attributes(headers, record.topic),
        )
        spans.append(span)
        own = (traceparent_of(span) or traceparent or "").encode()
        traced.append(
            dataclasses.replace(
                record,
                headers=tuple(
                    (name, own if name == _TRACEPARENT else value) for name, value in record.headers
                ),
            )
        )
    try:
        yield traced
    except BaseException as error:
        _end(spans, error)
        raise
    _end(spans, None)
