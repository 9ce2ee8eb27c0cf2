"""Publishes the worker's events in batches: starts, outcomes, heartbeats, log lines."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence

from interlock.common.events import Event
from interlock.common.parking import ParkedEvent, describe, is_poison, log_parked
from interlock.worker.metrics import PUBLISH_BATCH

__all__ = ["Reporter"]

_log = logging.getLogger(__name__)

Publish = Callable[[Sequence[Event]], Awaitable[None]]
Callback = Callable[[], None]


class Reporter:
    """Collects events from every running task and publishes them in few calls.

    Whatever is emitted while a publish call is in flight goes out together in the
    next call, so batches grow with load and a lone event waits for nobody (plus an
    optional linger). Events keep their emission order. A callback given with an
    event runs once the broker acknowledged it; a failed publish is retried (with
    backoff) before anything newer is sent, unless it failed for good (poison): then
    the events the broker refuses are parked and the rest go out.

    Args:
        publish: Publishes one batch (e.g. ``KafkaBroker.publish``).
        max_batch: Most events per call. Default: 1000.
        linger_ms: Wait after the first event of an idle period. Default: 0 ms.
        retry_backoff_ms: First wait after a failed publish (doubling, at most 5 s).
            Default: 100 ms.
        on_outage: Called when a publish fails after the last one succeeded (the
            broker may have lost what it acknowledged lately). Default: none.
    """

    def __init__(
        self,
        publish: Publish,
        *,
        max_batch: int = 1000,
        linger_ms: int = 0,
        retry_backoff_ms: int = 100,
        on_outage: Callback | None = None,
    ) -> None:
        self._publish = publish
        self._on_outage = on_outage
        self._max_batch = max_batch
        self._linger_s = linger_ms / 1000
        self._retry_backoff_s = retry_backoff_ms / 1000
        self._queue: deque[tuple[Event, Callback | None]] = deque()
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None

    def emit(self, events: Sequence[Event], on_published: Callback | None = None) -> None:
        """Queue ``events``; ``on_published`` runs once all of them are acknowledged."""
        if not events:
            if on_published is not None:
                on_published()
            return
        for event in events[:-1]:
            self._queue.append((event, None))
        self._queue.append((events[-1], on_published))
        self._idle.clear()
        self._wakeup.set()

    def start(self) -> None:
        """Start publishing in the background."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="worker-reporter")

    @property
    def running(self) -> bool:
        """Whether the background publisher is alive."""
        return self._task is not None and not self._task.done()

    async def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until everything emitted so far is published.

        Returns:
            Whether it was published within ``timeout_s`` (default: no bound).
        """
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def stop(self) -> None:
        """Stop publishing; what is still queued is dropped (call :meth:`flush` first)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _publish_or_park(self, events: list[Event]) -> None:
        """Publish ``events``; on a poison error, one by one, parking the unpublishable.

        Parked events (a record the broker refuses, whatever the limits before it
        missed) are logged and counted: the worker has no database to keep them in,
        and retrying them would hold back every event queued behind them.
        """
        try:
            await self._publish(events)
            return
        except Exception as error:
            if not is_poison(error):
                raise
        parked = []
        for event in events:
            try:
                await self._publish([event])
            except Exception as error:
                if not is_poison(error):
                    raise
                parked.append(ParkedEvent.of(event, origin="worker", reason=describe(error)))
        log_parked(parked)

    async def _run(self) -> None:
        failures = 0
        while True:
            if not self._queue:
                self._idle.set()
                self._wakeup.clear()
                await self._wakeup.wait()
                if self._linger_s:
                    await asyncio.sleep(self._linger_s)
            count = min(len(self._queue), self._max_batch)
            batch = [self._queue[i] for i in range(count)]
            try:
                await self._publish_or_park([event for event, _ in batch])
            except Exception:
                failures += 1
                if failures == 1 and self._on_outage is not None:
                    self._on_outage()
                delay = min(self._retry_backoff_s * 2 ** (failures - 1), 5.0)
                _log.exception(
                    "publishing task events failed; retrying",
                    extra={"events": count, "retry_in_s": delay},
                )
                await asyncio.sleep(delay)
                continue
            failures = 0
            PUBLISH_BATCH.observe(count)
            for _ in range(count):
                _, callback = self._queue.popleft()
                if callback is not None:
                    try:
                        callback()
                    except Exception:
                        _log.exception("a publish callback failed")
