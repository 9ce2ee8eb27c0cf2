"""The worker as a resource: wires its roles together, starts them, drains them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

from aiokafka import AIOKafkaConsumer

from interlock.common import topics
from interlock.common.kafka import EventConsumer, KafkaBroker, consumer_config, is_member
from interlock.common.supervision import request_process_restart
from interlock.worker.attempts import AttemptEvents
from interlock.worker.context import ArtifactStoreFactory
from interlock.worker.domain.slots import Slots
from interlock.worker.errors import WorkerShutdown
from interlock.worker.executors import Executor
from interlock.worker.metrics import DRAIN_ABORTED, DRAINS, SLOTS_FREE
from interlock.worker.reporter import Reporter
from interlock.worker.runtime._backlog import Backlog
from interlock.worker.runtime._cancellation import Cancellations
from interlock.worker.runtime._commits import OffsetCommitter
from interlock.worker.runtime._dispatcher import Dispatcher
from interlock.worker.runtime._fetcher import Fetcher
from interlock.worker.runtime._finished import FinishedAttempts
from interlock.worker.runtime._heartbeats import send_heartbeats
from interlock.worker.runtime._metrics import MetricsByType
from interlock.worker.runtime._rebalance import RebalanceListener
from interlock.worker.runtime._reports import AttemptReports
from interlock.worker.runtime._sent_logs import SentLogs
from interlock.worker.secrets import SecretResolver
from interlock.worker.settings import WorkerSettings

__all__ = ["Worker"]

_log = logging.getLogger(__name__)

_ABORT_WAIT_S = 5.0
_CLIENT_CLOSE_S = 10.0
_FETCH_RETRY_S = 0.5


class Worker:
    """Runs scheduled tasks while open (a resource of the worker's app).

    Wires the roles: a :class:`Fetcher` fills the :class:`Backlog`, a
    :class:`Dispatcher` starts and runs attempts, :class:`AttemptReports` sends their
    events, an :class:`OffsetCommitter` commits, :class:`Cancellations` aborts.

    Args:
        settings: The worker's settings.
        broker: The opened broker: its publisher sends the task events.
        executors: Executors by task type.
        artifacts: Gives each attempt its artifact store. Default: none (uploads raise
            :class:`~interlock.worker.context.ArtifactsUnavailable`).
    """

    name = "worker"

    def __init__(
        self,
        settings: WorkerSettings,
        broker: KafkaBroker,
        executors: Mapping[str, Executor],
        *,
        artifacts: ArtifactStoreFactory | None = None,
    ) -> None:
        self._settings = settings
        self._executors = dict(executors)
        self._secrets = SecretResolver(settings)
        self._source = settings.service_name
        self._worker_id = settings.worker_id
        self._consumer: AIOKafkaConsumer | None = None
        self._sent_logs = sent_logs = SentLogs(
            worker_id=self._worker_id,
            max_bytes=settings.log_resend_max_bytes,
            max_age_s=settings.log_resend_window_s,
        )
        self._events = AttemptEvents(
            source=self._source, worker_id=self._worker_id, keep_log=sent_logs.keep
        )
        self._reporter = Reporter(
            broker.publish,
            max_batch=settings.report_max_batch,
            linger_ms=settings.report_linger_ms,
            on_outage=self._resend_last_logs,
        )
        self._backlog = Backlog()
        self._committer = OffsetCommitter(
            lambda: self._consumer,
            commit_interval_ms=settings.commit_interval_ms,
            commit_timeout_ms=settings.kafka_request_timeout_ms,
        )
        metrics = MetricsByType(self._executors)
        reports = AttemptReports(
            self._backlog,
            self._events,
            self._reporter,
            self._committer,
            metrics,
            FinishedAttempts(settings.finished_attempts_memory),
            sent_logs,
        )
        self._topics = _task_topics(settings)
        self._fetcher = Fetcher(
            self._backlog,
            self._committer,
            band_of=self._topics,
            max_in_flight=settings.max_in_flight,
            prefetch=settings.prefetch,
            poll_timeout_ms=settings.poll_timeout_ms,
            on_fetched=lambda: self._dispatcher.dispatch(),
            answer_copy=reports.answer_copy,
            group_id=settings.worker_group_id,
        )
        self._cancellations = Cancellations(
            settings,
            client_id=f"{self._source}-{self._worker_id}",
            abort_run=lambda run_id, reason: self._dispatcher.abort_run(run_id, reason),
            abort_attempt=lambda key, reason: self._dispatcher.abort_attempt(key, reason),
            log_missing=lambda request: self._reporter.emit(sent_logs.answer(request)),
        )
        self._dispatcher = Dispatcher(
            self._backlog,
            Slots(settings.max_in_flight, settings.max_in_flight_per_type),
            self._executors,
            self._secrets,
            reports,
            metrics,
            cancellation=self._cancellations.cancellation,
            on_room=self._fetcher.room_made,
            worker_id=self._worker_id,
            heartbeat_interval_ms=settings.heartbeat_interval_ms,
            artifacts=artifacts,
        )
        self._background: list[asyncio.Task[None]] = []
        self._replacing: asyncio.Task[None] | None = None
        self._draining = False

    @property
    def worker_id(self) -> str:
        """This worker's id in task events."""
        return self._worker_id

    @property
    def cancellations(self) -> EventConsumer:
        """The consumer of ``workflow.cancelled`` and ``task.settled`` (per instance)."""
        return self._cancellations.consumer

    def assignment(self) -> frozenset[int]:
        """Return the partitions of the default queue's ``task.scheduled`` this worker owns."""
        return frozenset(
            partition
            for topic, partition in self.task_assignment()
            if topic == topics.TASK_SCHEDULED.topic(self._settings)
        )

    def task_assignment(self) -> frozenset[tuple[str, int]]:
        """Return the ``(topic, partition)`` pairs of task topics this worker owns now."""
        if self._consumer is None:
            return frozenset()
        return frozenset((tp.topic, tp.partition) for tp in self._consumer.assignment())

    async def __aenter__(self) -> Self:
        self._cancellations.started_at = datetime.now(UTC)
        settings = self._settings
        await topics.ensure_task_topics(settings, settings.worker_queues)
        consumer = await self._open_consumer()
        self._consumer = consumer
        await self._cancellations.consumer.start()
        self._reporter.start()
        SLOTS_FREE.inc(settings.max_in_flight)
        self._background = [
            asyncio.create_task(self._fetcher.run(lambda: self._consumer), name="worker-fetch"),
            asyncio.create_task(self._committer.run(), name="worker-commit"),
            asyncio.create_task(
                send_heartbeats(
                    self._backlog,
                    self._events,
                    self._reporter,
                    log_flush_interval_ms=settings.log_flush_interval_ms,
                ),
                name="worker-heartbeat",
            ),
            asyncio.create_task(self._cancellations.consumer.run(), name="worker-cancellations"),
        ]
        for task in self._background:
            task.add_done_callback(self._loop_ended)
        _log.info(
            "worker started",
            extra={
                "worker_id": self._worker_id,
                "queues": sorted(settings.worker_queues),
                "task_types": sorted(self._executors),
            },
        )
        return self

    async def _open_consumer(self) -> AIOKafkaConsumer:
        """A new client of the task topics, started and subscribed."""
        settings = self._settings
        consumer = AIOKafkaConsumer(
            **consumer_config(
                settings,
                group_id=settings.worker_group_id,
                client_id=f"{self._source}-{self._worker_id}",
            )
        )
        await consumer.start()
        consumer.subscribe(
            list(self._topics),
            listener=RebalanceListener(
                self._backlog,
                self._committer,
                on_room=self._fetcher.room_made,
                is_member=lambda: is_member(consumer),
                on_lost=self._consumer_lost,
            ),
        )
        return consumer

    def _consumer_lost(self) -> None:
        if self._replacing is None and not self._draining:
            self._resend_last_logs()
            self._replacing = asyncio.create_task(self._replace_consumer())

    def _resend_last_logs(self) -> None:
        """Send the last log events of the attempts ended lately again, without lines.

        The broker may have lost what it acknowledged lately (restarted empty): they
        tell the metadata service how many lines each wrote, so it asks for the rest.
        """
        lookback_s = self._settings.log_outage_lookback_s
        self._reporter.emit(self._sent_logs.last_events_since(lookback_s))

    async def _replace_consumer(self) -> None:
        """Close the client that lost its partitions and start a new one.

        After the broker restarted empty, the old client kept its view of the topics
        (partition counts included) and joined with it, so partitions the re-created
        topics had gained were assigned to nobody and their tasks never ran. A new
        client reads the topics afresh before it joins.
        """
        old, self._consumer = self._consumer, None
        try:
            if old is not None:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(_CLIENT_CLOSE_S):
                        await old.stop()
            self._backlog.drop_waiting()
            self._committer.forget(self._committer.tracked())
            while not self._draining:
                try:
                    self._consumer = await self._open_consumer()
                    _log.warning("task consumer replaced after its partitions were lost")
                    break
                except Exception:
                    _log.warning("cannot open a task consumer; retrying", exc_info=True)
                    await asyncio.sleep(_FETCH_RETRY_S)
        finally:
            self._replacing = None
            self._fetcher.room_made()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.drain()

    async def check(self) -> None:
        """Raise when the worker is not consuming (a background loop ended)."""
        if self._consumer is None:
            raise RuntimeError("the worker is not running")
        for task in self._background:
            if task.done():
                error = None if task.cancelled() else task.exception()
                raise RuntimeError(f"{task.get_name()} stopped") from error
        if not self._reporter.running:
            raise RuntimeError("the worker's reporter stopped")

    def check_alive(self) -> None:
        """Raise when a background loop ended while running: only a new process helps.

        The loops retry what they expect to fail (fetching, committing and publishing
        recover when the broker is back); one that crashed anyway has already asked
        for a process restart (:func:`interlock.common.supervision.request_process_restart`).
        """
        for task in self._background:
            if task.done() and not self._draining:
                raise RuntimeError(f"{task.get_name()} stopped")

    def _loop_ended(self, task: asyncio.Task[None]) -> None:
        if self._draining:
            return
        error = None if task.cancelled() else task.exception()
        _log.critical("a worker loop stopped", exc_info=error, extra={"loop": task.get_name()})
        request_process_restart(f"{task.get_name()} stopped: {error!r}")

    async def drain(self) -> None:
        """Stop fetching, let running tasks finish in time, report the rest, commit, leave."""
        if not self._background or self._draining:
            return
        self._draining = True
        DRAINS.inc()
        self._fetcher.stop()
        self._dispatcher.stop()
        fetch, commit, heartbeat, cancellations = self._background
        await _cancel(fetch)
        if self._replacing is not None:
            await _cancel(self._replacing)
        # Never started: left uncommitted, so the partition's next owner runs them.
        self._backlog.drop_waiting()
        running = [a.task for a in self._backlog.running if a.task is not None]
        if running:
            _log.info(
                "draining running tasks",
                extra={"running": len(running), "timeout_ms": self._settings.drain_timeout_ms},
            )
            _, late = await asyncio.wait(running, timeout=self._settings.drain_timeout_ms / 1000)
            if late:
                DRAIN_ABORTED.inc(len(late))
                self._dispatcher.abort_all(WorkerShutdown("the worker shut down first"))
                _, stuck = await asyncio.wait(late, timeout=_ABORT_WAIT_S)
                if stuck:
                    # Executors that ignore cancellation: the scheduler's heartbeat
                    # timeout retries their attempts.
                    _log.error("tasks ignored the abort", extra={"tasks": len(stuck)})
        await _cancel(heartbeat)
        if not await self._reporter.flush(timeout_s=10):
            _log.error("task events could not be published before shut-down")
        await _cancel(commit)
        await self._committer.commit()
        await self._reporter.stop()
        await self._cancellations.consumer.stop()
        await _cancel(cancellations)
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()
        for executor in self._executors.values():
            close = getattr(executor, "aclose", None)
            if close is not None:
                await close()
        await self._secrets.aclose()
        SLOTS_FREE.dec(self._settings.max_in_flight)
        _log.info("worker stopped", extra={"worker_id": self._worker_id})


def _task_topics(settings: WorkerSettings) -> dict[str, int]:
    """The task topics of the queues served (with prefix), each with its band (0 highest)."""
    return {
        settings.kafka_topic_prefix + topic: band
        for queue in settings.worker_queues
        for band, topic in enumerate(topics.queue_topics(queue))
    }


async def _cancel(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
