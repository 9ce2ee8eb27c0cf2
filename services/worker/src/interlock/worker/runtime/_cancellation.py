"""Cancellation: a per-instance consumer of ``workflow.cancelled`` that aborts its runs' tasks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from interlock.common import topics
from interlock.common.events import Event, is_type
from interlock.common.kafka import EventConsumer
from interlock.worker.settings import WorkerSettings

_FETCH_WAIT_MS = 100


class Cancellations:
    """Remembers cancelled runs for a while and aborts their running attempts.

    Each worker instance reads every ``workflow.cancelled`` (a group of its own), from
    ``cancellation_memory_s`` before it started; fetched attempts of a run it knows
    cancelled fail at once instead of running.

    Args:
        settings: The worker's settings.
        client_id: The Kafka client id.
        abort_run: Aborts the running attempts of a run, given the reason.
    """

    def __init__(
        self,
        settings: WorkerSettings,
        *,
        client_id: str,
        abort_run: Callable[[str, str], None],
    ) -> None:
        self._memory = timedelta(seconds=settings.cancellation_memory_s)
        self._abort_run = abort_run
        self._runs: dict[str, datetime] = {}
        self.started_at = datetime.now(UTC)
        # Cancellations are rare and not on the hot path: a longer fetch wait keeps this
        # consumer's idle polling cheap.
        self.consumer = EventConsumer(
            settings,
            group_id=f"{settings.worker_group_id}.cancellations.{settings.worker_id}",
            event_types=[topics.WORKFLOW_CANCELLED],
            handler=self.on_cancelled,
            client_id=client_id,
            fetch_max_wait_ms=_FETCH_WAIT_MS,
        )

    def is_cancelled(self, run_id: str) -> bool:
        """Whether ``run_id`` was cancelled (as far as this worker remembers)."""
        return run_id in self._runs

    async def on_cancelled(self, events: Sequence[Event]) -> None:
        """The consumer's handler: remember the runs, abort their running attempts."""
        horizon = self.started_at - self._memory
        for event in events:
            if not is_type(event, topics.WORKFLOW_CANCELLED) or event.time < horizon:
                continue
            self._runs[event.run_id] = event.time
            self._abort_run(event.run_id, event.payload.reason or "the run was cancelled")
        forget_before = datetime.now(UTC) - self._memory
        for run_id, cancelled_at in list(self._runs.items()):
            if cancelled_at < forget_before:
                del self._runs[run_id]
