"""Where a lone run's time goes: each of its events on the broker, timed two ways.

While the lone runs of workload (f) go, nothing reads the broker for the bench: a
probe only notes where every partition of the ``workflow.*`` and ``task.*`` topics
ends when the runs begin (assigned, no consumer group: it commits nothing and joins
nobody's rebalance), and reads from there once they are over. For each event of those
runs it keeps two times after the run's ``created_at``:

- ``built``: the event's own time (``ce_time``), set when the service built it, inside
  the handler or request that caused it (before that transaction committed);
- ``sent``: the record's timestamp, which the producer sets when the relay (or the
  worker's reporter) hands the record over (milliseconds).

Between an event and the next one, ``built -> sent`` is the committing service's
outbox hop (the rest of its transaction, commit, the relay's wake-up and drain up to
the send; the worker publishes directly, so its ``sent`` equals ``built``) and
``sent -> built`` of the next event is the broker hop plus the next service's fetch
and handling up to the event. The run's server span ends at the ``built`` time of
``workflow.completed`` (the projection stores that time as ``finished_at``).

The probe reads afterwards because reading during the runs slowed them down: the
local broker scans every partition a fetch names and a fetch waits at least its
``fetch_max_wait_ms``, so a reader of every run topic polling every 2 ms (as the probe
did) kept the broker busy and added about 2 ms to every other client's fetch and
produce, some 20 ms to a lone run's seven broker hops.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from bench import stats

TOPIC_PATTERN = re.compile(r"^(?:workflow|task)\.")
"""The topics a run's critical path crosses (no prefix: the bench stack sets none)."""
FETCH_MAX_WAIT_MS = 100
"""The probe's fetch wait: it reads after the runs, so it waits long and fetches less."""
DRAINED_AFTER_EMPTY_POLLS = 2
"""Reading ends after this many fetches in a row that returned nothing."""
POLL_TIMEOUT_MS = 300
"""Longest wait of one of those fetches."""


@dataclass(frozen=True)
class SeenEvent:
    """One event of a watched run, as the probe read it."""

    run_id: str
    type: str
    built_s: float
    """``ce_time`` (epoch seconds)."""
    sent_s: float
    """The record's timestamp (epoch seconds, millisecond resolution)."""


@dataclass
class HopProbe:
    """Reads every event of the run topics written between :meth:`start` and :meth:`stop`.

    Args:
        bootstrap_servers: The stack's broker.
    """

    bootstrap_servers: str
    seen: list[SeenEvent] = field(default_factory=list)
    _consumer: Any = None

    async def start(self) -> None:
        """Note where every partition of the run topics ends; read nothing yet."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers,
            client_id=f"bench-hops-{uuid.uuid4().hex[:6]}",
            enable_auto_commit=False,
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        )
        await consumer.start()
        topics = [topic for topic in await consumer.topics() if TOPIC_PATTERN.match(topic)]
        partitions = [
            TopicPartition(topic, partition)
            for topic in topics
            for partition in consumer.partitions_for_topic(topic) or ()
        ]
        consumer.assign(partitions)
        consumer.pause(*partitions)  # positions are still looked up; nothing is fetched
        # The local broker's end offsets may point a batch back: older records are only
        # read again, and those of other runs are dropped.
        await consumer.seek_to_end(*partitions)
        self._consumer = consumer

    async def stop(self) -> None:
        """Read everything written since :meth:`start`, then disconnect."""
        consumer, self._consumer = self._consumer, None
        if consumer is None:
            return
        try:
            consumer.resume(*consumer.assignment())
            empty = 0
            while empty < DRAINED_AFTER_EMPTY_POLLS:
                batch = await consumer.getmany(timeout_ms=POLL_TIMEOUT_MS)
                empty = 0 if batch else empty + 1
                for records in batch.values():
                    self.seen.extend(_seen(records))
        finally:
            await consumer.stop()


def _seen(records: Sequence[Any]) -> list[SeenEvent]:
    seen = []
    for record in records:
        headers = {name: value.decode() for name, value in record.headers}
        if "ce_time" in headers:
            seen.append(
                SeenEvent(
                    run_id=headers.get("ce_runid", ""),
                    type=headers.get("ce_type", ""),
                    built_s=_epoch(headers["ce_time"]),
                    sent_s=record.timestamp / 1000,
                )
            )
    return seen


def _epoch(rfc3339: str) -> float:
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()


def hop_table(
    runs: Sequence[tuple[str, datetime]], seen: Sequence[SeenEvent]
) -> list[dict[str, Any]]:
    """Median times of each event of the runs, after ``created_at``, in the order built.

    Args:
        runs: ``(run id, created_at)`` of the measured runs.
        seen: What the probe read.

    Returns:
        One row per event of a run (``task.scheduled#2`` is the second of its type):
        ``event``, ``runs`` (how many runs had it), and ``built_ms``, ``sent_ms``:
        medians after the run's ``created_at``.
    """
    created = {run_id: created_at.timestamp() for run_id, created_at in runs}
    by_run: dict[str, list[SeenEvent]] = {}
    for event in seen:
        if event.run_id in created:
            by_run.setdefault(event.run_id, []).append(event)
    times: dict[str, list[tuple[float, float]]] = {}
    for run_id, events in by_run.items():
        start = created[run_id]
        counts: dict[str, int] = {}
        unique = {(event.type, event.built_s): event for event in events}  # redeliveries
        for event in sorted(unique.values(), key=lambda e: e.built_s):
            counts[event.type] = counts.get(event.type, 0) + 1
            label = f"{_short(event.type)}#{counts[event.type]}"
            times.setdefault(label, []).append((event.built_s - start, event.sent_s - start))
    rows = [
        {
            "event": label,
            "runs": len(values),
            "built_ms": _median_ms([v[0] for v in values]),
            "sent_ms": _median_ms([v[1] for v in values]),
        }
        for label, values in times.items()
    ]
    return sorted(rows, key=lambda row: row["built_ms"])


def _short(cloudevents_type: str) -> str:
    """``io.interlock.task.scheduled.v1`` -> ``task.scheduled``."""
    parts = cloudevents_type.split(".")
    return ".".join(parts[2:-1]) if len(parts) > 3 else cloudevents_type


def _median_ms(values_s: Sequence[float]) -> float:
    median = stats.percentile(values_s, 50)
    return 0.0 if median is None else round(median * 1000, 2)
