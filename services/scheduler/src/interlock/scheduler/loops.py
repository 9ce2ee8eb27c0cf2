"""Background loops of the scheduler: durable timers, topic checks, the loop runner."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import asyncpg

from interlock.common.postgres import PostgresDatabase
from interlock.common.settings import KafkaOptions
from interlock.common.supervision import SupervisedTask
from interlock.common.topics import ensure_topics
from interlock.scheduler import store
from interlock.scheduler.handlers import Clock, utc_now

_log = logging.getLogger(__name__)


class TimerLoop:
    """Fires due timers in batches, from any number of scheduler instances at once.

    One pass claims up to ``batch_size`` due timers with ``FOR UPDATE SKIP LOCKED``,
    locks their runs (``SKIP LOCKED`` too: a run busy elsewhere is fired on the next
    pass), fires every due timer of those runs and saves the result, all in one
    transaction. Between passes it sleeps until the earliest timer is due, at most
    ``max_sleep_ms`` (timers other instances set), and wakes early through
    :meth:`wake` when this process sets an earlier timer.

    Args:
        pool: The scheduler's pool.
        batch_size: Most timers one pass claims. Default: 500.
        max_sleep_ms: Longest sleep between passes. Default: 500 ms.
        clock: Source of the current time. Default: UTC now.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        batch_size: int = 500,
        max_sleep_ms: int = 500,
        clock: Clock = utc_now,
    ) -> None:
        self._pool = pool
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
        async with self._pool.acquire() as conn, conn.transaction():
            now = self._clock()
            run_ids = await store.due_timer_runs(conn, now, self._batch_size)
            if not run_ids:
                return 0
            runs = await store.load_runs(conn, run_ids, skip_locked=True)
            fired = sum(run.fire_due_timers(now) for run in runs.values())
            await store.save_runs(conn, list(runs.values()), now)
        return fired

    async def run(self) -> None:
        """Pass, then sleep until the next due timer; until cancelled."""
        while True:
            try:
                fired = await self.fire_once()
                if fired >= self._batch_size:
                    continue
                async with self._pool.acquire() as conn:
                    next_due = await store.next_due_at(conn)
            except Exception:
                # Any failure (a restarting database drops connections mid-query:
                # asyncpg's InterfaceError is no PostgresError) is retried, never fatal.
                _log.exception("timer pass failed; retrying")
                await asyncio.sleep(self._max_sleep_s)
                continue
            sleep_s = self._max_sleep_s
            if next_due is not None:
                sleep_s = min(sleep_s, max((next_due - self._clock()).total_seconds(), 0.0))
            self._wake_at = self._clock() + timedelta(seconds=sleep_s)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=sleep_s)
            self._wake_at = None


class TopicGuard:
    """Re-creates missing topics now and then, so a broker that restarted empty recovers.

    Without their topics, consumers of every service stall (offset commits and fetches
    fail); :func:`~interlock.common.topics.ensure_topics` creates the missing ones and
    leaves the others alone.

    Args:
        options: Kafka options (prefix, partitions).
        interval_s: Least time between two checks.
    """

    def __init__(self, options: KafkaOptions, *, interval_s: float) -> None:
        self._options = options
        self._interval_s = interval_s
        self._next_check = 0.0

    async def check_once(self) -> None:
        """Ensure the topics if the interval passed; failures are logged, not raised."""
        now = time.monotonic()
        if now < self._next_check:
            return
        self._next_check = now + self._interval_s
        try:
            await ensure_topics(self._options)
        except Exception:
            _log.warning("cannot ensure Kafka topics; will try again", exc_info=True)


class LoopTask(SupervisedTask):
    """Runs a background loop while open (a resource for the timer loop and reconciler).

    A :class:`~interlock.common.supervision.SupervisedTask`: a crashed loop is started
    again with backoff; ``/readyz`` reports it while it waits.

    Args:
        name: Name ``/readyz`` reports.
        database: Opened before this; the loop is built from its pool when opening.
        build: Returns the coroutine to run, given the pool.
    """

    def __init__(
        self,
        name: str,
        database: PostgresDatabase,
        build: Callable[[asyncpg.Pool], Awaitable[None]],
    ) -> None:
        super().__init__(name, lambda: build(database.pool))


async def every(interval_s: float, step: Callable[[], Awaitable[int]]) -> None:
    """Call ``step`` every ``interval_s`` (at once again when it did work); forever."""
    while True:
        try:
            if await step():
                continue
        except Exception:
            _log.exception("periodic step failed; retrying")
        await asyncio.sleep(interval_s)
