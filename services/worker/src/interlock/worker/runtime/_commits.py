"""Offset commits: a partition is committed up to its oldest record whose outcome is unsent."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition

from interlock.common.kafka import commit_if_member
from interlock.worker.domain.offsets import PartitionOffsets

_log = logging.getLogger(__name__)


class OffsetCommitter:
    """Tracks each partition's records until their outcome is published, and commits.

    At most one commit per ``commit_interval_ms`` (each costs a request here and in the
    broker), started when an outcome was published or a record skipped.

    Commits go through :func:`~interlock.common.kafka.commit_if_member`: none while the
    consumer is not a member of the group (after the broker restarted empty, the
    offsets of before would land in the new, empty group, and the worker resume past
    the end of the re-created topics), each bounded by ``commit_timeout_ms`` (aiokafka
    retries some failures without end, which held the rebalance of a revocation).

    Args:
        consumer: Returns the open ``task.scheduled`` consumer, ``None`` once closed.
        commit_interval_ms: Least time between two commits.
        commit_timeout_ms: Longest wait for one commit (it is given up, not retried:
            the next commit carries the same offsets or later ones).
    """

    def __init__(
        self,
        consumer: Callable[[], AIOKafkaConsumer | None],
        *,
        commit_interval_ms: int,
        commit_timeout_ms: int,
    ) -> None:
        self._consumer = consumer
        self._interval_s = commit_interval_ms / 1000
        self._timeout_s = commit_timeout_ms / 1000
        self._offsets: dict[TopicPartition, PartitionOffsets] = {}
        self._wanted = asyncio.Event()
        self._lock = asyncio.Lock()

    def of(self, tp: TopicPartition) -> PartitionOffsets:
        """The tracker of ``tp``'s records (created when first asked)."""
        offsets = self._offsets.get(tp)
        if offsets is None:
            offsets = self._offsets[tp] = PartitionOffsets()
        return offsets

    def skipped(self, offsets: PartitionOffsets, offset: int) -> None:
        """A record that needs no outcome (not a task for this worker)."""
        offsets.done(offset)
        self._wanted.set()

    def published(self, offsets: Sequence[tuple[TopicPartition, int]]) -> None:
        """The outcome of the records at ``offsets`` is published: they may be committed."""
        for tp, offset in offsets:
            tracker = self._offsets.get(tp)
            if tracker is not None:
                tracker.done(offset)
        self._wanted.set()

    def tracked(self) -> list[TopicPartition]:
        """The partitions whose records are tracked."""
        return list(self._offsets)

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        """Stop tracking partitions this worker no longer owns."""
        for tp in partitions:
            self._offsets.pop(tp, None)

    async def run(self) -> None:
        """Commit when wanted, at most once per interval; until cancelled."""
        while True:
            await self._wanted.wait()
            self._wanted.clear()
            began = time.monotonic()
            await self.commit()
            await asyncio.sleep(began + self._interval_s - time.monotonic())

    async def commit(self, partitions: set[TopicPartition] | None = None) -> None:
        """Commit what is committable now (of ``partitions`` only, when given)."""
        consumer = self._consumer()
        if consumer is None:
            return
        async with self._lock:
            assigned = set(consumer.assignment())
            offsets: dict[TopicPartition, int] = {}
            for tp, tracker in self._offsets.items():
                if tp not in assigned or (partitions is not None and tp not in partitions):
                    continue
                offset = tracker.committable()
                if offset is not None:
                    offsets[tp] = offset
            if not offsets:
                return
            try:
                if not await commit_if_member(consumer, offsets, timeout_s=self._timeout_s):
                    return
            except Exception as error:
                # Typically a rebalance: the next owner re-runs what is uncommitted and
                # the scheduler drops the duplicate outcomes.
                _log.warning("offset commit failed", extra={"error": repr(error)})
                return
            for tp, offset in offsets.items():
                still_tracked = self._offsets.get(tp)
                if still_tracked is not None:
                    still_tracked.committed(offset)
