"""Heartbeats: each running attempt's, at its own interval, with its pending log lines."""

from __future__ import annotations

import asyncio
import time

from interlock.common.events import Event
from interlock.worker.attempts import AttemptEvents
from interlock.worker.metrics import HEARTBEATS_SENT
from interlock.worker.reporter import Reporter
from interlock.worker.runtime._backlog import Backlog
from interlock.worker.runtime._dispatcher import MIN_HEARTBEAT_S


async def send_heartbeats(
    backlog: Backlog, events: AttemptEvents, reporter: Reporter, *, log_flush_interval_ms: int
) -> None:
    """Send each running attempt's heartbeat when due, and its log lines; until cancelled.

    Args:
        backlog: The attempts held (the running ones beat).
        events: Builds the events.
        reporter: Publishes them in batches.
        log_flush_interval_ms: The longest sleep: lines a task writes are sent at least
            this often, not only with its heartbeats (an attempt starting while the
            loop sleeps included).
    """
    flush_s = log_flush_interval_ms / 1000
    # Heartbeats are at least MIN_HEARTBEAT_S apart; lines may go out more often.
    shortest_sleep_s = min(MIN_HEARTBEAT_S, flush_s)
    running = backlog.running
    while True:
        now = time.monotonic()
        batch: list[Event] = []
        for attempt in running:
            log = events.log(attempt)
            if log is not None:
                batch.append(log)
            if attempt.next_heartbeat > now or attempt.context is None:
                continue
            attempt.next_heartbeat = now + attempt.heartbeat_interval_s
            batch.append(events.heartbeat(attempt))
            HEARTBEATS_SENT.inc()
        reporter.emit(batch)
        next_due = min((a.next_heartbeat for a in running), default=now + flush_s)
        await asyncio.sleep(max(shortest_sleep_s, min(next_due, now + flush_s) - time.monotonic()))
