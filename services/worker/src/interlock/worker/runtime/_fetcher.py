"""Fetching ``task.scheduled``: higher bands first, fair across partitions, only with room."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import ConsumerStoppedError, KafkaError

from interlock.common import topics
from interlock.common.errors import EventDecodeError
from interlock.common.events import is_type
from interlock.common.kafka import decode_consumer_record
from interlock.common.metrics import observe_fetched
from interlock.worker.attempts import Attempt
from interlock.worker.runtime._backlog import Backlog
from interlock.worker.runtime._commits import OffsetCommitter

_log = logging.getLogger(__name__)

_FETCH_RETRY_S = 0.5
_KEEP_POLLING_S = 30.0

Batch = dict[TopicPartition, list[ConsumerRecord[Any, Any]]]


class Fetcher:
    """Fills the backlog from the consumer while there are free slots (plus a prefetch).

    Not calling ``getmany`` is the backpressure: a full worker waits until
    :meth:`room_made`. The consumer reads only the topics of the queues this worker
    serves, one per priority band; buffered records of a higher band are taken first.

    Args:
        backlog: Where fetched attempts wait.
        committer: Tracks every fetched record's offset.
        band_of: Each subscribed topic's band (0 highest, see
            :data:`~interlock.common.topics.PRIORITY_BANDS`).
        max_in_flight: Most attempts running, and most waiting, at once.
        prefetch: Attempts fetched beyond the free slots.
        answer_copy: Answers a copy of an attempt finished lately (whether it was one).
        poll_timeout_ms: Longest wait of a fetch for new records.
        on_fetched: Called after new attempts were queued (starts them).
        group_id: The consumer group (labels the consumed-events metrics).
    """

    def __init__(
        self,
        backlog: Backlog,
        committer: OffsetCommitter,
        *,
        band_of: Mapping[str, int],
        max_in_flight: int,
        prefetch: int,
        poll_timeout_ms: int,
        on_fetched: Callable[[], None],
        answer_copy: Callable[[Attempt], bool],
        group_id: str,
    ) -> None:
        self._group_id = group_id
        self._prefetch = prefetch
        self._answer_copy = answer_copy
        self._backlog = backlog
        self._committer = committer
        self._band_of = dict(band_of)
        self._max_in_flight = max_in_flight
        self._poll_timeout_ms = poll_timeout_ms
        self._on_fetched = on_fetched
        self._capacity = asyncio.Event()
        self._stopping = False
        self._turn = 0

    def room_made(self) -> None:
        """An attempt started or ended, or a partition went: there may be room to fetch."""
        self._capacity.set()

    def stop(self) -> None:
        """Fetch no more (the loop ends at its next turn)."""
        self._stopping = True

    async def run(self, consumer_of: Callable[[], AIOKafkaConsumer | None]) -> None:
        """Fetch until stopped or cancelled, from whichever client ``consumer_of`` returns.

        The worker replaces a client that lost its partitions; meanwhile there is none.
        """
        while not self._stopping:
            self._capacity.clear()
            consumer = consumer_of()
            if consumer is None:
                await self._wait_for_room_s(_FETCH_RETRY_S)
                continue
            room = self._room()
            try:
                if room <= 0:
                    await self._wait_for_room(consumer)
                    continue
                batch = await self._fetch_fairly(consumer, room)
            except (KafkaError, ConsumerStoppedError) as error:
                # Coordinator or connection trouble (the client recovers on its own),
                # or a client being replaced.
                _log.warning("fetching tasks failed; retrying", extra={"error": repr(error)})
                await asyncio.sleep(_FETCH_RETRY_S)
                continue
            if batch:
                observe_fetched(self._group_id, consumer, batch)
                self._accept(batch)
                self._on_fetched()
            elif batch is None:
                await self._wait_for_room(consumer)

    def _room(self) -> int:
        """How many more tasks to fetch: free slots plus ``prefetch``, less those waiting.

        Fetching follows free capacity: a busy worker leaves the queue's tasks to the
        workers that have room instead of holding them while its slots are taken.
        """
        free = self._max_in_flight - len(self._backlog.running)
        return min(self._max_in_flight, free + self._prefetch) - self._backlog.waiting

    async def _fetch_fairly(self, consumer: AIOKafkaConsumer, room: int) -> Batch | None:
        """Take up to ``room`` records: higher bands first, each partition at most its share.

        The client returns buffered records partition by partition, the same one first
        until it is drained, so asking for "any ``room`` records" lets one busy
        partition starve the others, and a low band's backlog hide a high band's task.
        Instead each partition's buffer is read (no wait), highest band first, the
        partitions of a band in turn starting with a different one each time; only when
        all are empty does the fetch wait for new records. Returns ``None`` when every
        partition already holds its share.
        """
        assigned = consumer.assignment()
        poll_ms = self._poll_timeout_ms
        if not assigned:
            batch: Batch = await consumer.getmany(timeout_ms=poll_ms, max_records=room)
            return batch
        share = -(-self._max_in_flight // len(assigned))
        quotas = {tp: share - self._backlog.waiting_in(tp) for tp in assigned}
        eligible = [tp for tp in assigned if quotas[tp] > 0]
        if not eligible:
            return None
        self._turn += 1
        batch = {}
        for band in self._bands(eligible):
            start = self._turn % len(band)
            for tp in band[start:] + band[:start]:
                taken = await consumer.getmany(tp, timeout_ms=0, max_records=min(room, quotas[tp]))
                for partition, records in taken.items():
                    batch[partition] = records
                    room -= len(records)
                if room <= 0:
                    return batch
        if batch:
            return batch
        fetched: Batch = await consumer.getmany(*eligible, timeout_ms=poll_ms, max_records=room)
        return fetched

    def _bands(self, partitions: Sequence[TopicPartition]) -> list[list[TopicPartition]]:
        """``partitions`` grouped by band, highest first, each group by partition number."""
        lowest = len(self._band_of)
        ordered = sorted(
            partitions, key=lambda tp: (self._band_of.get(tp.topic, lowest), tp.topic, tp.partition)
        )
        groups: dict[int, list[TopicPartition]] = {}
        for tp in ordered:
            groups.setdefault(self._band_of.get(tp.topic, lowest), []).append(tp)
        return list(groups.values())

    async def _wait_for_room_s(self, timeout_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._capacity.wait(), timeout=timeout_s)

    async def _wait_for_room(self, consumer: AIOKafkaConsumer) -> None:
        """Wait until a task starts or ends; poll now and then to stay in the group.

        aiokafka leaves the group when it is not polled for ``max_poll_interval_ms``
        (5 minutes), so a worker full for long polls its paused partitions every 30 s
        (which returns nothing).
        """
        try:
            await asyncio.wait_for(self._capacity.wait(), timeout=_KEEP_POLLING_S)
        except TimeoutError:
            paused = set(consumer.assignment())
            consumer.pause(*paused)
            try:
                await consumer.getmany(timeout_ms=0)
            finally:
                still_assigned = paused & set(consumer.assignment())
                if still_assigned:
                    consumer.resume(*still_assigned)

    def _accept(self, batch: Mapping[TopicPartition, Sequence[ConsumerRecord[Any, Any]]]) -> None:
        backlog = self._backlog
        for tp, records in batch.items():
            offsets = self._committer.of(tp)
            for record in records:
                offsets.received(record.offset)
                attempt = self._decode(tp, record)
                if attempt is None:
                    self._committer.skipped(offsets, record.offset)
                    continue
                if attempt.key not in backlog.active and self._answer_copy(attempt):
                    continue
                backlog.add(tp, record.offset, attempt)

    def _decode(self, tp: TopicPartition, record: ConsumerRecord[Any, Any]) -> Attempt | None:
        try:
            event = decode_consumer_record(record)
        except EventDecodeError as error:
            _log.error(
                "skipping a record that is not a valid event",
                extra={"partition": tp.partition, "offset": record.offset, "reason": str(error)},
            )
            return None
        if not is_type(event, topics.TASK_SCHEDULED):
            _log.error("skipping an event of another type", extra={"type": event.type.name})
            return None
        return Attempt(event=event, offsets=[(tp, record.offset)])
