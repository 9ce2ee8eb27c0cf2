"""Background loops of the scheduler: durable timers, topic checks, the loop runner."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta

from interlock.common.settings import KafkaOptions
from interlock.common.supervision import SupervisedTask
from interlock.common.topics import ensure_task_topics, ensure_topics
from interlock.scheduler.domain.clock import Clock, utc_now
from interlock.scheduler.metrics import TIMER_OVERDUE
from interlock.scheduler.service import SchedulerService

_log = logging.getLogger(__name__)


class TimerLoop:
    """Fires due timers in batches, from any number of scheduler instances at once.

    One pass fires up to ``batch_size`` due timers
    (:meth:`~interlock.scheduler.service.SchedulerService.fire_due_timers`). Between
    passes it sleeps until the earliest timer is due, at most ``max_sleep_ms`` (timers
    other instances set), and wakes early through :meth:`wake` when this process sets
    an earlier timer.

    Args:
        service: The scheduler's use cases.
        batch_size: Most timers one pass claims. Default: 500.
        max_sleep_ms: Longest sleep between passes. Default: 500 ms.
        clock: Source of the current time. Default: UTC now.
    """

    def __init__(
        self,
        service: SchedulerService,
        *,
        batch_size: int = 500,
        max_sleep_ms: int = 500,
        clock: Clock = utc_now,
    ) -> None:
        self._service = service
        self._batch_size = batch_size
        self._max_sleep_s = max_sleep_ms / 1000
        self._clock = clock
        self._wake = asyncio.Event()
        self._wake_at: datetime | None = None

    def wake(self, due_at: datetime) -> None:
        """Make the loop pass at ``due_at`` if it planned to sleep longer."""
        if self._wake_at is None or due_at < self._wake_at:
            self._wake.set()

    async def fire_once(self) -> int:
        """Fire one batch of due timers.

        Returns:
            How many timers fired.
        """
        return await self._service.fire_due_timers(self._batch_size)

    async def run(self) -> None:
        """Pass, then sleep until the next due timer; until cancelled."""
        while True:
            try:
                fired = await self.fire_once()
                if fired >= self._batch_size:
                    continue
                next_due = await self._service.next_timer_due()
            except Exception:
                # Any failure (a restarting database drops connections mid-query:
                # asyncpg's InterfaceError is no PostgresError) is retried, never fatal.
                _log.exception("timer pass failed; retrying")
                await asyncio.sleep(self._max_sleep_s)
                continue
            overdue = (self._clock() - next_due).total_seconds() if next_due else 0.0
            TIMER_OVERDUE.set(max(overdue, 0.0))
            sleep_s = self._max_sleep_s
            if next_due is not None:
                sleep_s = min(sleep_s, max((next_due - self._clock()).total_seconds(), 0.0))
            self._wake_at = self._clock() + timedelta(seconds=sleep_s)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=sleep_s)
            self._wake_at = None


class AdmissionLoop:
    """Starts runs waiting for a concurrency slot as slots free up.

    Passes when woken in-process (:meth:`wake`, after a commit that queued a run or
    ended a limited one) and at least every ``interval_s`` (slots freed by other
    instances).

    Args:
        service: The scheduler's use cases.
        interval_s: Longest time between passes. Default: 1 s.
    """

    def __init__(self, service: SchedulerService, *, interval_s: float = 1.0) -> None:
        self._service = service
        self._interval_s = interval_s
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Pass as soon as possible."""
        self._wake.set()

    async def run(self) -> None:
        """Pass, then wait to be woken or for the interval; until cancelled."""
        while True:
            self._wake.clear()
            try:
                await self._service.admit_waiting()
            except Exception:
                _log.exception("admission pass failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._interval_s)


class TaskTopics:
    """The task topics of every queue this process dispatched to, created before first use.

    A queue's topics (one per priority band) are created the first time a task of the
    queue is saved, so the relay never publishes to a topic the broker would create
    with its own defaults; known queues cost a set lookup.

    Args:
        options: Kafka options (prefix, partitions, ``kafka_queue_partitions``).
    """

    def __init__(self, options: KafkaOptions) -> None:
        self._options = options
        self._known: set[str] = set()

    async def ensure(self, queues: Iterable[str]) -> None:
        """Create the topics of the queues among ``queues`` not seen before.

        Raises:
            aiokafka.errors.KafkaError: The broker refused or is unreachable (the
                caller's transaction rolls back and its batch is retried).
        """
        missing = set(queues) - self._known
        if missing:
            await ensure_task_topics(self._options, missing)
            self._known |= missing

    async def recreate(self) -> None:
        """Create again the known queues' topics that went missing."""
        await ensure_task_topics(self._options, sorted(self._known))


class TopicGuard:
    """Re-creates missing topics now and then, so a broker that restarted empty recovers.

    Without their topics, consumers of every service stall (offset commits and fetches
    fail); :func:`~interlock.common.topics.ensure_topics` creates the missing ones and
    leaves the others alone, the queues' task topics included.

    Args:
        options: Kafka options (prefix, partitions).
        interval_s: Least time between two checks.
        task_topics: The queues' task topics to re-create too. Default: none.
    """

    def __init__(
        self, options: KafkaOptions, *, interval_s: float, task_topics: TaskTopics | None = None
    ) -> None:
        self._options = options
        self._interval_s = interval_s
        self._task_topics = task_topics
        self._next_check = 0.0

    async def check_once(self) -> None:
        """Ensure the topics if the interval passed; failures are logged, not raised."""
        now = time.monotonic()
        if now < self._next_check:
            return
        self._next_check = now + self._interval_s
        try:
            await ensure_topics(self._options)
            if self._task_topics is not None:
                await self._task_topics.recreate()
        except Exception:
            _log.warning("cannot ensure Kafka topics; will try again", exc_info=True)


class LoopTask(SupervisedTask):
    """Runs a background loop while open (a resource for the timer loop and reconciler).

    A :class:`~interlock.common.supervision.SupervisedTask`: a crashed loop is started
    again with backoff; ``/readyz`` reports it while it waits.

    Args:
        name: Name ``/readyz`` reports.
        loop: Returns the coroutine to run; called when opening (after the resources
            listed before this one opened).
    """


async def every(interval_s: float, step: Callable[[], Awaitable[int]]) -> None:
    """Call ``step`` every ``interval_s`` (at once again when it did work); forever."""
    while True:
        try:
            if await step():
                continue
        except Exception:
            _log.exception("periodic step failed; retrying")
        await asyncio.sleep(interval_s)
