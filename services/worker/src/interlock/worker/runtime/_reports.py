"""What the worker tells the platform about an attempt: started, outcome, logs."""

from __future__ import annotations

import asyncio
import logging

from interlock.common import topics
from interlock.common.events import Event
from interlock.worker.attempts import Attempt, AttemptEvents
from interlock.worker.domain.failures import classify
from interlock.worker.errors import (
    ExecutorUnavailable,
    InvalidParams,
    TaskAborted,
    TaskCancelled,
    WorkerShutdown,
)
from interlock.worker.metrics import REPLAYED_OUTCOMES
from interlock.worker.reporter import Reporter
from interlock.worker.runtime._backlog import Backlog
from interlock.worker.runtime._commits import OffsetCommitter
from interlock.worker.runtime._finished import FinishedAttempts
from interlock.worker.runtime._metrics import MetricsByType
from interlock.worker.runtime._sent_logs import SentLogs

_log = logging.getLogger(__name__)


class AttemptReports:
    """Turns attempts into task events and hands them to the batching reporter.

    ``task.started`` is sent once the attempt's first step has run, and only when the
    attempt is still running then: a task done at once (``noop``) reports just its
    outcome, which carries ``started_at`` and the worker id anyway. That halves the
    events of instantaneous tasks, for this worker and for every consumer.

    Args:
        events: Builds the task events.
        reporter: Publishes them in batches.
        committer: Told when an outcome is published (its records may be committed).
        metrics: Per task type series.
        backlog: The attempts held (only running ones are announced).
        finished: Remembers each outcome, to answer copies of the attempt.
        sent_logs: The log events published lately, sent again with a copy's
            outcome. Default: none.
    """

    def __init__(
        self,
        backlog: Backlog,
        events: AttemptEvents,
        reporter: Reporter,
        committer: OffsetCommitter,
        metrics: MetricsByType,
        finished: FinishedAttempts,
        sent_logs: SentLogs | None = None,
    ) -> None:
        self._finished = finished
        self._sent_logs = sent_logs
        self._events = events
        self._reporter = reporter
        self._committer = committer
        self._metrics = metrics
        self._running = backlog.running
        self._unannounced: list[Attempt] = []

    def announce_when_stepped(self, attempt: Attempt) -> None:
        """Send ``task.started`` after the attempt's first step, if it still runs then."""
        if not self._unannounced:
            # Callbacks run in order: this one after the first step of the task started.
            asyncio.get_running_loop().call_soon(self._announce)
        self._unannounced.append(attempt)

    def _announce(self) -> None:
        attempts, self._unannounced = self._unannounced, []
        events = []
        for attempt in attempts:
            if attempt not in self._running:
                continue
            if attempt.stepped:
                events.append(self._events.started(attempt))
            else:
                # Started after this call was scheduled: its first step is yet to come.
                self._unannounced.append(attempt)
        if self._unannounced:
            asyncio.get_running_loop().call_soon(self._announce)
        self._reporter.emit(events)

    def completed(self, attempt: Attempt, output_json: bytes) -> Event:
        """The attempt's ``task.completed``."""
        return self._events.completed(attempt, output_json)

    def failed(self, attempt: Attempt, error: BaseException) -> Event:
        """The attempt's ``task.failed`` for ``error`` (classified retryable or not)."""
        failure = classify(error)
        if not isinstance(error, TaskAborted | InvalidParams | ExecutorUnavailable):
            _log.info(
                "task failed",
                extra={
                    **attempt.log_fields,
                    "error_type": failure.type,
                    "retryable": failure.retryable,
                },
            )
        return self._events.failed(attempt, failure)

    def logs(self, attempt: Attempt) -> None:
        """Send the attempt's last log event: lines not sent yet, and how many it wrote."""
        log = self._events.log(attempt, last=True)
        if log is not None:
            self._reporter.emit([log])

    def outcome(self, attempt: Attempt, outcome: Event) -> None:
        """Count the outcome and send it; its records are committable once published."""
        metrics = self._metrics.of(attempt.scheduled.type)
        if attempt.abort is not None:
            result = "cancelled" if isinstance(attempt.abort, TaskCancelled) else "shutdown"
        else:
            result = "completed" if outcome.type == topics.TASK_COMPLETED else "failed"
        finished, duration = metrics.finished(result)
        finished.inc()
        if attempt.started_at is not None:
            duration.observe((outcome.time - attempt.started_at).total_seconds())
        if not isinstance(attempt.abort, WorkerShutdown):  # else another worker runs it
            self._finished.remember(attempt.key, outcome)
        offsets = attempt.offsets
        committer = self._committer
        self._reporter.emit([outcome], on_published=lambda: committer.published(offsets))

    def answer_copy(self, attempt: Attempt) -> bool:
        """Send the outcome again if ``attempt`` finished here lately; whether it did.

        Its record is committable once the outcome is published, as the first one's was.
        """
        outcome = self._finished.get(attempt.key)
        if outcome is None:
            return False
        REPLAYED_OUTCOMES.inc()
        if self._sent_logs is not None:
            # The outcome was lost (the scheduler sent the attempt again): the last log
            # events may have been lost with it, and only they tell how many lines exist.
            self._reporter.emit(self._sent_logs.again(attempt.key))
        offsets = attempt.offsets
        committer = self._committer
        self._reporter.emit([outcome], on_published=lambda: committer.published(offsets))
        return True
