"""Prometheus metrics every service shares, and the ``/metrics`` exposition.

Shared series (each service adds its domain series in its own ``metrics`` module):

- HTTP: requests by route template, method and status; latency.
- Consumers: events consumed by topic, batch size, handling time, lag as the age of the
  newest consumed event (the local broker's end offsets are unreliable) and offset lag
  from the fetched high watermark where the broker reports one.
- Outbox: backlog rows and age of the oldest row (measured by the relay every few
  seconds with one bounded query), publish latency and rows published.
- Parked events: :data:`interlock.common.parking.PARKED_EVENTS`.

Names follow Prometheus' conventions: ``interlock_`` prefix, base units, ``_total``
counters, ``_seconds`` durations; labels are bounded (no run or task ids).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

HTTP_REQUESTS = Counter(
    "interlock_http_requests_total",
    "HTTP requests served, by route template and status.",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "interlock_http_request_duration_seconds",
    "Time to serve an HTTP request, by route template.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)

_UNMATCHED = "unmatched"

_LATENCY_BUCKETS_S = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

EVENTS_CONSUMED = Counter(
    "interlock_events_consumed_total",
    "Events handled by a consumer group, by topic.",
    ["group", "topic"],
)
CONSUMER_BATCH_EVENTS = Histogram(
    "interlock_consumer_batch_events",
    "Events per batch a consumer group handled.",
    ["group"],
    buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000),
)
CONSUMER_BATCH_DURATION = Histogram(
    "interlock_consumer_batch_duration_seconds",
    "Time a consumer group's handler took for one batch (applied or failed).",
    ["group"],
    buckets=_LATENCY_BUCKETS_S,
)
CONSUMER_FAILED_BATCHES = Counter(
    "interlock_consumer_failed_batches_total",
    "Batches whose handler failed (they are redelivered), by consumer group.",
    ["group"],
)
CONSUMER_LAG = Gauge(
    "interlock_consumer_lag_seconds",
    "Age of the newest event of the last batch a consumer group handled, by topic.",
    ["group", "topic"],
)
CONSUMER_OFFSET_LAG = Gauge(
    "interlock_consumer_offset_lag_records",
    "Records behind the fetched high watermark after the last batch, by topic.",
    ["group", "topic"],
)
OUTBOX_BACKLOG_ROWS = Gauge(
    "interlock_outbox_backlog_rows",
    "Rows waiting in this service's outbox (counted up to a bound), at the last measure.",
)
OUTBOX_OLDEST_AGE = Gauge(
    "interlock_outbox_oldest_age_seconds",
    "Age of the oldest row waiting in this service's outbox, at the last measure.",
)
OUTBOX_PUBLISHED = Counter(
    "interlock_outbox_published_total", "Outbox rows the relay published (or parked)."
)
OUTBOX_PUBLISH_DURATION = Histogram(
    "interlock_outbox_publish_duration_seconds",
    "Time to publish one outbox batch until the broker acknowledged it.",
    buckets=_LATENCY_BUCKETS_S,
)


def start_group_series(group: str) -> None:
    """Expose a consumer group's failure counter at 0 before any failure (``rate`` works)."""
    CONSUMER_FAILED_BATCHES.labels(group)


def observe_batch(group: str, events: int, seconds: float, *, failed: bool = False) -> None:
    """Count one batch a consumer group's handler took ``seconds`` over.

    Args:
        group: The consumer group.
        events: How many events the batch held.
        seconds: Time the handler took.
        failed: Whether the handler raised (the batch is redelivered).
    """
    CONSUMER_BATCH_EVENTS.labels(group).observe(events)
    CONSUMER_BATCH_DURATION.labels(group).observe(seconds)
    if failed:
        CONSUMER_FAILED_BATCHES.labels(group).inc()


_lagging: dict[str, set[str]] = {}
"""The topics of each consumer group whose lag gauge is not 0."""


def observe_caught_up(group: str) -> None:
    """A consumer group's fetch found nothing new: its lag is 0 on every topic."""
    topics = _lagging.pop(group, None)
    if topics:
        for topic in topics:
            CONSUMER_LAG.labels(group, topic).set(0)


def observe_fetched(group: str, consumer: Any, batch: Mapping[Any, Sequence[Any]]) -> None:
    """Count the records of a fetched batch per topic, with their lag.

    Args:
        group: The consumer group.
        consumer: The aiokafka consumer that fetched them (for its high watermarks).
        batch: Its ``getmany`` result: records by ``TopicPartition``.
    """
    per_topic: dict[str, tuple[int, int, int | None]] = {}
    for tp, records in batch.items():
        if not records:
            continue
        count, newest_ms, offset_lag = per_topic.get(tp.topic, (0, 0, None))
        last = records[-1]  # a partition's records come in order
        if last.timestamp is not None:
            newest_ms = max(newest_ms, last.timestamp)
        highwater = consumer.highwater(tp)
        if highwater is not None:
            offset_lag = (offset_lag or 0) + highwater - last.offset - 1
        per_topic[tp.topic] = (count + len(records), newest_ms, offset_lag)
    now_s = datetime.now(UTC).timestamp()
    for topic, (count, newest_ms, offset_lag) in per_topic.items():
        EVENTS_CONSUMED.labels(group, topic).inc(count)
        if newest_ms > 0:  # the relay stamps records when it publishes them
            CONSUMER_LAG.labels(group, topic).set(max(now_s - newest_ms / 1000, 0.0))
            _lagging.setdefault(group, set()).add(topic)
        if offset_lag is not None:
            CONSUMER_OFFSET_LAG.labels(group, topic).set(max(offset_lag, 0))


def observe_request(scope: Scope, status: int, seconds: float) -> None:
    """Count and time one served request by its route *template*, so labels stay bounded.

    Args:
        scope: The request's ASGI scope, after routing (``route`` set when one matched).
        status: The response status (500 when none was sent).
        seconds: Time taken to serve it.
    """
    template = getattr(scope.get("route"), "path", _UNMATCHED)
    counter, latency = _series(scope["method"], template, status)
    counter.inc()
    latency.observe(seconds)


@functools.lru_cache(maxsize=1024)
def _series(method: str, template: str, status: int) -> tuple[Counter, Histogram]:
    # labels() validates and locks on every call; a request only needs the lookup.
    return (
        HTTP_REQUESTS.labels(method, template, str(status)),
        HTTP_LATENCY.labels(method, template),
    )


async def metrics_endpoint(_: Request) -> Response:
    """Serve every metric of the process in the Prometheus text format."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
