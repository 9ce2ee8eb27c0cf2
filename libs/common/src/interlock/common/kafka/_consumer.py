"""Consuming events in batches, committing offsets only after the handler succeeded."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import ConsumerStoppedError, KafkaError

from interlock.common.errors import EventDecodeError
from interlock.common.event_spans import traced_handler
from interlock.common.events import Event, KafkaRecord
from interlock.common.kafka._config import consumer_config
from interlock.common.metrics import (
    observe_batch,
    observe_caught_up,
    observe_fetched,
    start_group_series,
)
from interlock.common.parking import ParkedEvent, ParkEvents, describe, is_poison, log_parked
from interlock.common.resources import Lifecycle
from interlock.common.settings import KafkaOptions
from interlock.common.topics import EventType

__all__ = ["EventConsumer", "EventHandler", "commit_if_member", "is_member"]

_log = logging.getLogger(__name__)

_NO_GENERATION = -1
"""aiokafka's generation while the consumer is not a member of its group."""

_PATTERN_METADATA_MAX_AGE_MS = 5_000
"""How soon a consumer of a routed type sees a topic created on demand (a new queue)."""

EventHandler = Callable[[Sequence[Event]], Awaitable[None]]
"""An async function applying one batch of events; raising means "not applied"."""


class EventConsumer(Lifecycle):
    """Consumes events of some types in batches, as a member of a consumer group.

    :meth:`run` fetches up to ``options.kafka_max_batch_size`` records, decodes them
    and awaits ``handler`` once with the whole batch (records of one partition stay in
    order). Offsets are committed only after the handler returned, so delivery is
    at-least-once: handlers must be idempotent (see :mod:`interlock.common.inbox`).
    A batch's commit runs while the next batch is fetched and handled (the next commit
    waits for it, so commits stay in order): the round trip never delays the next batch.

    - A record that is not a valid event (:class:`~interlock.common.errors.EventDecodeError`)
      is logged and skipped: its offset is committed with the batch, so one poison
      record never stalls a partition.
    - When the handler raises a transient error (a lost connection, a timeout),
      nothing is committed; the error is logged, the consumer seeks back to the
      batch's first offsets and retries after a backoff (doubling from
      ``retry_backoff_ms`` up to ``max_retry_backoff_ms``). A restart or a rebalance
      redelivers the batch as well.
    - When it raises a poison error (:func:`interlock.common.parking.is_poison`: a
      value PostgreSQL refuses, text that cannot be encoded, ...), the batch is split
      in halves and handled again until the events that fail alone are found; those
      are parked (``park``) and the batch is committed: one event PostgreSQL refuses
      used to stop its partition, and every run on it, for good.

    Example::

        consumer = EventConsumer(
            options, group_id="scheduler", event_types=[topics.TASK_COMPLETED], handler=apply
        )
        async with consumer:
            await consumer.run()  # until cancelled or consumer.stop()

    Args:
        options: Kafka options (topic prefix, batch size, timeouts).
        group_id: Consumer group; members of one group split the partitions.
        event_types: Event types whose topics to subscribe to (every topic of a
            routed type, such as each queue's ``task.scheduled``, by a pattern).
        handler: Applies one batch.
        client_id: Name the broker logs for this client. Default: the group id.
        poll_timeout_ms: Longest wait of one fetch for records; also bounds how long
            :meth:`stop` waits for an idle loop to notice. Default: 500 ms.
        retry_backoff_ms: First wait after a handler failure. Default: 200 ms.
        max_retry_backoff_ms: Longest wait after repeated failures. Default: 10000 ms.
        fetch_max_wait_ms: This consumer's broker fetch wait, for one off a run's
            critical path that should batch more and poll less. Default:
            ``options.kafka_fetch_max_wait_ms``.
        park: Stores the events the handler can never apply, e.g.
            :func:`interlock.common.parking.postgres_parking`. Default: they are only
            logged and counted (a service without a database).
        on_partitions_changed: Called whenever partitions are taken from or given to
            this member, for a handler that keeps what it wrote about runs between
            batches: another member may apply a run's events meanwhile. Default: none.
    """

    def __init__(
        self,
        options: KafkaOptions,
        *,
        group_id: str,
        event_types: Sequence[EventType],
        handler: EventHandler,
        client_id: str | None = None,
        poll_timeout_ms: int = 500,
        retry_backoff_ms: int = 200,
        max_retry_backoff_ms: int = 10_000,
        fetch_max_wait_ms: int | None = None,
        park: ParkEvents | None = None,
        on_partitions_changed: Callable[[], None] | None = None,
    ) -> None:
        if not event_types:
            raise ValueError("an EventConsumer needs at least one event type")
        if fetch_max_wait_ms is not None:
            options = options.model_copy(update={"kafka_fetch_max_wait_ms": fetch_max_wait_ms})
        self._options = options
        self._group_id = group_id
        self._topics = sorted({t.topic(options) for t in event_types})
        self._pattern: str | None = None
        if any(t.route is not None for t in event_types):
            # A routed type (task.scheduled) travels on topics created on demand.
            families = sorted({t.family_pattern(options) for t in event_types})
            self._pattern = f"^(?:{'|'.join(families)})$"
        self._handler = traced_handler(handler, group=group_id)
        self._client_id = client_id or group_id
        self._poll_timeout_ms = poll_timeout_ms
        self._retry_backoff_ms = retry_backoff_ms
        self._max_retry_backoff_ms = max_retry_backoff_ms
        self._park = park
        self._on_partitions_changed = on_partitions_changed
        self._consumer: Any = None
        self._stopping = asyncio.Event()
        self._running: asyncio.Task[Any] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._committing: asyncio.Task[None] | None = None
        self._failing_since: float | None = None
        start_group_series(group_id)

    @property
    def group_id(self) -> str:
        """The consumer group."""
        return self._group_id

    @property
    def topics(self) -> Sequence[str]:
        """The subscribed topic names (with prefix), sorted."""
        return tuple(self._topics)

    @property
    def started(self) -> bool:
        """Whether the client is connected (between :meth:`start` and :meth:`stop`)."""
        return self._consumer is not None

    @property
    def failing(self) -> str | None:
        """Since when the handler fails on every batch, or ``None`` when it works."""
        if self._failing_since is None:
            return None
        return f"handling fails since {time.monotonic() - self._failing_since:.0f} s"

    def assignment(self) -> frozenset[tuple[str, int]]:
        """Return the ``(topic, partition)`` pairs currently assigned to this member."""
        if self._consumer is None:
            return frozenset()
        return frozenset((tp.topic, tp.partition) for tp in self._consumer.assignment())

    async def start(self) -> None:
        """Connect and join the group (partitions are assigned during the first fetch).

        Raises:
            aiokafka.errors.KafkaConnectionError: When no bootstrap server answers.
        """
        if self._consumer is not None:
            return
        self._stopping.clear()
        config = consumer_config(self._options, group_id=self._group_id, client_id=self._client_id)
        listener = None
        if self._on_partitions_changed is not None:
            listener = _PartitionsChanged(self._on_partitions_changed)
        if self._pattern is None:
            consumer = AIOKafkaConsumer(**config)
            consumer.subscribe(self._topics, listener=listener)
        else:
            # New topics of the family are seen when metadata is refreshed.
            config["metadata_max_age_ms"] = _PATTERN_METADATA_MAX_AGE_MS
            consumer = AIOKafkaConsumer(**config)
            consumer.subscribe(pattern=self._pattern, listener=listener)
        await consumer.start()
        self._consumer = consumer

    async def stop(self, *, timeout_s: float = 10.0) -> None:
        """Let a running :meth:`run` finish its batch, then leave the group.

        Args:
            timeout_s: How long to wait for the batch in progress before cancelling
                the task running :meth:`run` (the batch is then redelivered).
                Default: 10 s.
        """
        self._stopping.set()
        running = self._running
        if running is not None and running is not asyncio.current_task():
            try:
                await asyncio.wait_for(self._idle.wait(), timeout=timeout_s)
            except TimeoutError:
                _log.warning(
                    "event handler did not finish in time; cancelling it",
                    extra={"group_id": self._group_id, "timeout_s": timeout_s},
                )
                running.cancel()
                await self._idle.wait()
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()

    async def run(self) -> None:
        """Consume until :meth:`stop` is called or the task is cancelled.

        Raises:
            RuntimeError: When the consumer is not started or already running.
            aiokafka.errors.KafkaError: The client failed in a way it does not recover
                from by itself; stop it and start it again
                (:class:`~interlock.common.kafka.EventConsumerTask` does).
        """
        consumer = self._consumer
        if consumer is None:
            raise RuntimeError("EventConsumer is not started")
        if self._running is not None and not self._running.done():
            raise RuntimeError("EventConsumer is already running")
        self._running = asyncio.current_task()
        self._idle.clear()
        failures = 0
        try:
            while not self._stopping.is_set():
                try:
                    batch = await consumer.getmany(
                        timeout_ms=self._poll_timeout_ms,
                        max_records=self._options.kafka_max_batch_size,
                    )
                except ConsumerStoppedError:
                    if self._stopping.is_set():
                        return
                    raise
                if not batch:
                    observe_caught_up(self._group_id)
                    continue
                if await self._process(consumer, batch):
                    failures = 0
                    self._failing_since = None
                    continue
                failures += 1
                if self._failing_since is None:
                    self._failing_since = time.monotonic()
                await self._backoff(failures)
        finally:
            await self._committed()
            self._running = None
            self._idle.set()

    async def _process(self, consumer: Any, batch: dict[Any, list[Any]]) -> bool:
        """Decode and handle one fetched batch, then start its commit (per fetch).

        Args:
            consumer: The aiokafka consumer the batch came from.
            batch: ``getmany``'s result: aiokafka records by ``TopicPartition``.

        Returns:
            ``True`` when the batch was handled (its commit started after the previous
            one ended); ``False`` when the handler raised (consumer sought back).
        """
        events: list[Event] = []
        for records in batch.values():
            for record in records:
                event = self._decode(record)
                if event is not None:
                    events.append(event)
        if events:
            started = time.perf_counter()
            try:
                await self._handler(events)
            except Exception as error:
                observe_batch(
                    self._group_id, len(events), time.perf_counter() - started, failed=True
                )
                if not is_poison(error) or not await self._isolated_and_parked(events):
                    _log.exception(
                        "event handler failed; the batch will be redelivered",
                        extra={"group_id": self._group_id, "events": len(events)},
                    )
                    self._seek_back(consumer, batch)
                    return False
            else:
                observe_batch(self._group_id, len(events), time.perf_counter() - started)
        observe_fetched(self._group_id, consumer, batch)
        await self._committed()
        offsets = {tp: records[-1].offset + 1 for tp, records in batch.items() if records}
        self._committing = asyncio.create_task(self._commit(consumer, offsets))
        return True

    async def _isolated_and_parked(self, events: Sequence[Event]) -> bool:
        """Handle ``events`` in halves down to single events, parking those that fail.

        Returns:
            ``True`` when every event was applied or parked; ``False`` when a transient
            error came up on the way (the batch is then redelivered as a whole; the
            handler is idempotent).
        """
        try:
            poison = await self._poison(events)
            parked = [
                ParkedEvent.of(event, origin=self._group_id, reason=reason)
                for event, reason in poison
            ]
            if self._park is not None:
                await self._park(parked)
            else:
                log_parked(parked)
        except Exception:
            return False
        return True

    async def _poison(self, events: Sequence[Event]) -> list[tuple[Event, str]]:
        """The events of ``events`` the handler refuses alone, after applying the rest."""
        try:
            await self._handler(events)
        except Exception as error:
            if not is_poison(error):
                raise
            if len(events) == 1:
                return [(events[0], describe(error))]
            middle = len(events) // 2
            return await self._poison(events[:middle]) + await self._poison(events[middle:])
        return []

    def _decode(self, record: Any) -> Event | None:
        try:
            return decode_consumer_record(record)
        except EventDecodeError as error:
            _log.error(
                "skipping a record that is not a valid event",
                extra={
                    "group_id": self._group_id,
                    "topic": record.topic,
                    "partition": record.partition,
                    "offset": record.offset,
                    "reason": str(error),
                },
            )
            return None

    async def _committed(self) -> None:
        """Wait for the previous batch's commit (it never raises: failures are logged)."""
        committing, self._committing = self._committing, None
        if committing is not None:
            await asyncio.shield(committing)

    async def _commit(self, consumer: Any, offsets: dict[Any, int]) -> None:
        try:
            await commit_if_member(
                consumer, offsets, timeout_s=self._options.kafka_request_timeout_ms / 1000
            )
        except (KafkaError, ConsumerStoppedError, TimeoutError) as error:
            # Typically a rebalance moved a partition away mid-batch: its new owner gets
            # the batch again and the idempotent handler drops what it already applied.
            _log.warning(
                "offset commit failed; the batch may be redelivered",
                extra={"group_id": self._group_id, "error": repr(error)},
            )

    def _seek_back(self, consumer: Any, batch: dict[Any, list[Any]]) -> None:
        assigned: set[TopicPartition] = set(consumer.assignment())
        for tp, records in batch.items():
            if records and tp in assigned:
                consumer.seek(tp, records[0].offset)

    async def _backoff(self, failures: int) -> None:
        delay_ms = min(self._retry_backoff_ms * 2 ** (failures - 1), self._max_retry_backoff_ms)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=delay_ms / 1000)


class _PartitionsChanged(ConsumerRebalanceListener):  # type: ignore[misc]
    """Calls ``changed`` when partitions are revoked or assigned."""

    def __init__(self, changed: Callable[[], None]) -> None:
        self._changed = changed

    def on_partitions_revoked(self, revoked: Any) -> None:
        self._changed()

    def on_partitions_assigned(self, assigned: Any) -> None:
        self._changed()


def is_member(consumer: AIOKafkaConsumer) -> bool:
    """Whether ``consumer`` is a member of its group (it joined and was not forgotten)."""
    coordinator = getattr(consumer, "_coordinator", None)
    return coordinator is None or coordinator.generation != _NO_GENERATION


async def commit_if_member(
    consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int], *, timeout_s: float
) -> bool:
    """Commit ``offsets`` while ``consumer`` is a member of its group; whether it did.

    - Between losing its membership (the broker forgot the group: it restarted empty,
      or the session expired) and joining again, aiokafka sends commits with no
      generation, which a broker takes as a standalone commit: offsets from before a
      broker restart then landed in the new broker's empty group, and the consumer
      resumed from them, past the end of the re-created topics, skipping every record
      written since. Such a commit is not sent; the offsets stay uncommitted and the
      records are delivered again (consumers are idempotent).
    - aiokafka retries a commit that meets a retriable error without end (every commit
      got ``UnknownTopicOrPartitionError`` until the topics existed again); a commit
      is given up after ``timeout_s``.

    Raises:
        aiokafka.errors.KafkaError: The commit failed.
        TimeoutError: It took longer than ``timeout_s``.
    """
    if not is_member(consumer):
        return False
    async with asyncio.timeout(timeout_s):
        await consumer.commit(offsets)
    return True


def decode_consumer_record(record: Any) -> Event:
    """The event an aiokafka ``ConsumerRecord`` carries.

    Raises:
        EventDecodeError: The record is not a valid event (see :meth:`Event.from_record`).
    """
    return Event.from_record(
        KafkaRecord(
            topic=record.topic,
            key=record.key,
            value=record.value,
            headers=tuple(record.headers),
        )
    )
