"""The attempts a worker holds: waiting for a slot (per partition), running, not reported."""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable

from aiokafka import TopicPartition

from interlock.common.topics import PRIORITY_BANDS, priority_band
from interlock.worker.attempts import Attempt, AttemptKey

_SCAN_LIMIT = 64


class Backlog:
    """The attempts a worker holds, shared by its fetcher, dispatcher, reports, heartbeats.

    Waiting attempts are queued per partition. The highest priority band with a
    startable attempt goes first; within a band, partitions take turns, so one busy
    partition cannot starve the others.
    """

    def __init__(self) -> None:
        self.queues: dict[TopicPartition, deque[Attempt]] = {}
        self.rotations: tuple[deque[TopicPartition], ...] = tuple(deque() for _ in PRIORITY_BANDS)
        """Partitions holding waiting attempts, one rotation per band, highest first."""
        self.waiting = 0
        """How many attempts wait for a slot."""
        self.active: dict[AttemptKey, Attempt] = {}
        """Every attempt fetched and not yet reported (waiting or running)."""
        self.running: set[Attempt] = set()
        """Attempts holding a slot."""
        self.by_run: dict[str, set[Attempt]] = {}
        """The running attempts of each run."""

    def waiting_in(self, tp: TopicPartition) -> int:
        """How many attempts of ``tp`` wait."""
        return len(self.queues.get(tp, ()))

    def add(self, tp: TopicPartition, record_offset: int, attempt: Attempt) -> None:
        """Queue ``attempt``, or attach the record to the same attempt already held.

        A redelivery of an attempt this worker already has: one outcome releases both
        records.
        """
        known = self.active.get(attempt.key)
        if known is not None:
            known.offsets.append((tp, record_offset))
            return
        self.active[attempt.key] = attempt
        queue = self.queues.get(tp)
        if queue is None:
            # A partition belongs to one band's topic: its first attempt tells which.
            band = PRIORITY_BANDS.index(priority_band(attempt.scheduled.priority))
            queue = self.queues[tp] = deque()
            self.rotations[band].append(tp)
        queue.append(attempt)
        self.waiting += 1

    def take_next(self, can_start: Callable[[str], bool]) -> Attempt | None:
        """Take the next waiting attempt whose type ``can_start``, highest band first.

        The partitions of a band take turns: each call goes on from the partition after
        the one the last call took from in that band; ``None`` when no partition holds
        a startable attempt.
        """
        for rotation in self.rotations:
            for _ in range(len(rotation)):
                tp = rotation[0]
                rotation.rotate(-1)
                attempt = _take(self.queues[tp], can_start)
                if attempt is not None:
                    self.waiting -= 1
                    return attempt
        return None

    def drop_partition(self, tp: TopicPartition) -> None:
        """Forget the waiting attempts of a partition this worker no longer owns."""
        for attempt in self.queues.pop(tp, ()):
            self.active.pop(attempt.key, None)
            self.waiting -= 1
        for rotation in self.rotations:
            if tp in rotation:
                rotation.remove(tp)

    def drop_waiting(self) -> None:
        """Forget every waiting attempt (never started: left uncommitted for the next owner)."""
        for attempt in itertools.chain.from_iterable(self.queues.values()):
            self.active.pop(attempt.key, None)
        self.queues.clear()
        for rotation in self.rotations:
            rotation.clear()
        self.waiting = 0


def _take(queue: deque[Attempt], can_start: Callable[[str], bool]) -> Attempt | None:
    for index, attempt in enumerate(itertools.islice(queue, _SCAN_LIMIT)):
        if can_start(attempt.scheduled.type):
            del queue[index]
            return attempt
    return None
