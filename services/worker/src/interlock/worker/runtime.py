"""The worker at run time: fetch scheduled tasks, run them, report, commit.

Flow of one attempt::

    task.scheduled record ─► waiting (per partition) ─► running (slot taken)
        ─► task.started ─► executor ─► task.completed | task.failed
        ─► published ─► offset done ─► committed

- Backpressure: at most ``max_in_flight`` tasks run; fetched tasks wait only for the
  free slots plus ``prefetch`` (at most ``max_in_flight``);
  a full worker stops calling ``getmany``, and no partition may hold more than its
  share of the waiting tasks. Partitions are read in turn and waiting tasks start in
  round-robin order across partitions.
- At-least-once: a partition's offset is committed only up to its oldest record
  whose outcome is not published, at most once per ``commit_interval_ms``; the
  scheduler ignores duplicate outcomes.
- Publishing is batched (:class:`~interlock.worker.reporter.Reporter`).
- ``task.started`` is sent once the attempt's first step has run, and only when the
  attempt is still running then: a task done at once (``noop``) reports just its
  outcome, which carries ``started_at`` and the worker id anyway. That halves the
  events of instantaneous tasks, for this worker and for every consumer.
- A per-instance consumer of ``workflow.cancelled`` aborts running tasks of a
  cancelled run and skips its fetched ones.
- Closing drains: stop fetching, let running tasks finish within
  ``drain_timeout_ms``, report the rest as failed (retryable), commit, leave.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError
from prometheus_client import Counter

from interlock.common import topics
from interlock.common.errors import EventDecodeError
from interlock.common.events import Event, is_type
from interlock.common.kafka import (
    EventConsumer,
    KafkaBroker,
    consumer_config,
    decode_consumer_record,
)
from interlock.common.supervision import request_process_restart
from interlock.events.v1 import task_pb2
from interlock.worker.attempts import Attempt, AttemptEvents, AttemptKey
from interlock.worker.context import ArtifactStoreFactory, TaskContext, TaskLogger
from interlock.worker.domain.failures import classify
from interlock.worker.domain.offsets import PartitionOffsets
from interlock.worker.domain.slots import Slots
from interlock.worker.errors import (
    ExecutorUnavailable,
    InvalidParams,
    TaskAborted,
    TaskCancelled,
    TaskFailure,
    WorkerShutdown,
)
from interlock.worker.executors import Executor
from interlock.worker.metrics import (
    REPLAYED_OUTCOMES,
    TASK_DURATION,
    TASKS_FINISHED,
    TASKS_RUNNING,
)
from interlock.worker.reporter import Reporter
from interlock.worker.settings import WorkerSettings

__all__ = ["Worker"]

_log = logging.getLogger(__name__)

_SCAN_LIMIT = 64
_MIN_HEARTBEAT_S = 0.05
_FETCH_RETRY_S = 0.5
_ABORT_WAIT_S = 5.0
_KEEP_POLLING_S = 30.0
_CANCELLATION_FETCH_WAIT_MS = 100
_FINISHED_OUTPUT_BYTES = 64 * 1024 * 1024
"""Most output bytes the finished attempts' outcomes may hold together."""


class Worker:
    """Runs scheduled tasks while open (a resource of the worker's app).

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
        self._artifacts = artifacts
        self._broker = broker
        self._executors = dict(executors)
        self._queues = frozenset(settings.worker_queues)
        self._source = settings.service_name
        self._worker_id = settings.worker_id
        self._events = AttemptEvents(source=self._source, worker_id=self._worker_id)
        self._slots = Slots(settings.max_in_flight, settings.max_in_flight_per_type)
        self._reporter = Reporter(
            broker.publish,
            max_batch=settings.report_max_batch,
            linger_ms=settings.report_linger_ms,
        )
        self._waiting: dict[TopicPartition, deque[Attempt]] = {}
        self._rotation: deque[TopicPartition] = deque()
        self._waiting_count = 0
        self._active: dict[AttemptKey, Attempt] = {}
        self._finished: OrderedDict[AttemptKey, Event] = OrderedDict()
        """Outcomes of the attempts finished last (bounded), to answer copies of them."""
        self._finished_bytes = 0
        self._running: set[Attempt] = set()
        self._by_run: dict[str, set[Attempt]] = {}
        self._offsets: dict[TopicPartition, PartitionOffsets] = {}
        self._cancelled_runs: dict[str, datetime] = {}
        self._capacity = asyncio.Event()
        self._commit_wanted = asyncio.Event()
        self._commit_lock = asyncio.Lock()
        self._stopping = False
        self._started_at = datetime.now(UTC)
        self._consumer: AIOKafkaConsumer | None = None
        # Cancellations are rare and not on the hot path: a longer fetch wait keeps this
        # consumer's idle polling cheap.
        self._cancellations = EventConsumer(
            settings,
            group_id=f"{settings.worker_group_id}.cancellations.{settings.worker_id}",
            event_types=[topics.WORKFLOW_CANCELLED],
            handler=self._on_cancelled,
            client_id=f"{self._source}-{self._worker_id}",
            fetch_max_wait_ms=_CANCELLATION_FETCH_WAIT_MS,
        )
        self._background: list[asyncio.Task[None]] = []
        self._fetch_turn = 0
        self._unannounced: list[Attempt] = []
        self._metrics: dict[str, _TypeMetrics] = {}

    @property
    def worker_id(self) -> str:
        """This worker's id in task events."""
        return self._worker_id

    @property
    def cancellations(self) -> EventConsumer:
        """The consumer of ``workflow.cancelled`` (per instance)."""
        return self._cancellations

    def assignment(self) -> frozenset[int]:
        """Return the ``task.scheduled`` partitions this worker owns now."""
        if self._consumer is None:
            return frozenset()
        return frozenset(tp.partition for tp in self._consumer.assignment())

    async def __aenter__(self) -> Self:
        self._started_at = datetime.now(UTC)
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
            [topics.TASK_SCHEDULED.topic(settings)], listener=_RebalanceListener(self)
        )
        self._consumer = consumer
        await self._cancellations.start()
        self._reporter.start()
        self._background = [
            asyncio.create_task(self._fetch_loop(consumer), name="worker-fetch"),
            asyncio.create_task(self._commit_loop(), name="worker-commit"),
            asyncio.create_task(self._heartbeat_loop(), name="worker-heartbeat"),
            asyncio.create_task(self._cancellations.run(), name="worker-cancellations"),
        ]
        for task in self._background:
            task.add_done_callback(self._loop_ended)
        _log.info(
            "worker started",
            extra={
                "worker_id": self._worker_id,
                "queues": sorted(self._queues),
                "task_types": sorted(self._executors),
            },
        )
        return self

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
            if task.done() and not self._stopping:
                raise RuntimeError(f"{task.get_name()} stopped")

    def _loop_ended(self, task: asyncio.Task[None]) -> None:
        if self._stopping:
            return
        error = None if task.cancelled() else task.exception()
        _log.critical("a worker loop stopped", exc_info=error, extra={"loop": task.get_name()})
        request_process_restart(f"{task.get_name()} stopped: {error!r}")

    async def drain(self) -> None:
        """Stop fetching, let running tasks finish in time, report the rest, commit, leave."""
        if self._consumer is None:
            return
        self._stopping = True
        fetch, commit, heartbeat, cancellations = self._background
        await _cancel(fetch)
        for attempt in itertools.chain.from_iterable(self._waiting.values()):
            # Never started: left uncommitted, so the partition's next owner runs it.
            self._active.pop(attempt.key, None)
        self._waiting.clear()
        self._waiting_count = 0
        running = [a.task for a in self._running if a.task is not None]
        if running:
            _log.info(
                "draining running tasks",
                extra={"running": len(running), "timeout_ms": self._settings.drain_timeout_ms},
            )
            _, late = await asyncio.wait(running, timeout=self._settings.drain_timeout_ms / 1000)
            if late:
                for attempt in list(self._running):
                    self._abort(attempt, WorkerShutdown("the worker shut down first"))
                _, stuck = await asyncio.wait(late, timeout=_ABORT_WAIT_S)
                if stuck:
                    # Executors that ignore cancellation: the scheduler's heartbeat
                    # timeout retries their attempts.
                    _log.error("tasks ignored the abort", extra={"tasks": len(stuck)})
        await _cancel(heartbeat)
        if not await self._reporter.flush(timeout_s=10):
            _log.error("task events could not be published before shut-down")
        await _cancel(commit)
        await self._commit()
        await self._reporter.stop()
        await self._cancellations.stop()
        await _cancel(cancellations)
        consumer, self._consumer = self._consumer, None
        await consumer.stop()
        for executor in self._executors.values():
            close = getattr(executor, "aclose", None)
            if close is not None:
                await close()
        _log.info("worker stopped", extra={"worker_id": self._worker_id})

    # Fetching -----------------------------------------------------------------------

    async def _fetch_loop(self, consumer: AIOKafkaConsumer) -> None:
        while not self._stopping:
            self._capacity.clear()
            room = self._fetch_room()
            try:
                if room <= 0:
                    await self._wait_for_room(consumer)
                    continue
                batch = await self._fetch_fairly(consumer, room)
            except KafkaError as error:
                # Coordinator or connection trouble: the client recovers on its own.
                _log.warning("fetching tasks failed; retrying", extra={"error": repr(error)})
                await asyncio.sleep(_FETCH_RETRY_S)
                continue
            if batch:
                self._accept(batch)
                self._dispatch()
            elif batch is None:
                await self._wait_for_room(consumer)

    def _fetch_room(self) -> int:
        """How many more tasks to fetch: free slots plus ``prefetch``, less those waiting.

        Fetching follows free capacity: a busy worker leaves the queue's tasks to the
        workers that have room instead of holding them while its slots are taken.
        """
        settings = self._settings
        free = settings.max_in_flight - len(self._running)
        return min(settings.max_in_flight, free + settings.prefetch) - self._waiting_count

    async def _fetch_fairly(
        self, consumer: AIOKafkaConsumer, room: int
    ) -> dict[TopicPartition, list[ConsumerRecord[Any, Any]]] | None:
        """Take up to ``room`` records, each partition at most its share of waiting tasks.

        The client returns buffered records partition by partition, the same one first
        until it is drained, so asking for "any ``room`` records" lets one busy
        partition starve the others. Instead each partition's buffer is read in turn
        (no wait), starting with a different one each time; only when all are empty
        does the fetch wait for new records. Returns ``None`` when every partition
        already holds its share.
        """
        assigned = sorted(consumer.assignment(), key=lambda tp: tp.partition)
        poll_ms = self._settings.poll_timeout_ms
        if not assigned:
            batch: dict[TopicPartition, list[ConsumerRecord[Any, Any]]]
            batch = await consumer.getmany(timeout_ms=poll_ms, max_records=room)
            return batch
        share = -(-self._settings.max_in_flight // len(assigned))
        quotas = {tp: share - len(self._waiting.get(tp, ())) for tp in assigned}
        eligible = [tp for tp in assigned if quotas[tp] > 0]
        if not eligible:
            return None
        self._fetch_turn = (self._fetch_turn + 1) % len(eligible)
        batch = {}
        for tp in eligible[self._fetch_turn :] + eligible[: self._fetch_turn]:
            taken = await consumer.getmany(tp, timeout_ms=0, max_records=min(room, quotas[tp]))
            for partition, records in taken.items():
                batch[partition] = records
                room -= len(records)
            if room <= 0:
                return batch
        if batch:
            return batch
        fetched: dict[TopicPartition, list[ConsumerRecord[Any, Any]]]
        fetched = await consumer.getmany(*eligible, timeout_ms=poll_ms, max_records=room)
        return fetched

    async def _wait_for_room(self, consumer: AIOKafkaConsumer) -> None:
        """Wait until a task starts or ends; poll now and then to stay in the group.

        Not calling ``getmany`` is the backpressure. aiokafka leaves the group when it
        is not polled for ``max_poll_interval_ms`` (5 minutes), so a worker full for
        long polls its paused partitions every 30 s (which returns nothing).
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
        for tp, records in batch.items():
            offsets = self._offsets.get(tp)
            if offsets is None:
                offsets = self._offsets[tp] = PartitionOffsets()
            for record in records:
                offsets.received(record.offset)
                attempt = self._decode(tp, record)
                if attempt is None:
                    offsets.done(record.offset)
                    self._commit_wanted.set()
                    continue
                known = self._active.get(attempt.key)
                if known is not None:
                    # A redelivery of an attempt this worker already has: one outcome
                    # releases both records.
                    known.offsets.append((tp, record.offset))
                    continue
                finished = self._finished.get(attempt.key)
                if finished is not None:
                    # A copy of an attempt this worker just ran (re-sent by the
                    # scheduler, or redelivered): its outcome once more, not a second
                    # run. The scheduler drops it if the first one arrived.
                    self._replay(finished, (tp, record.offset))
                    continue
                self._active[attempt.key] = attempt
                queue = self._waiting.get(tp)
                if queue is None:
                    queue = self._waiting[tp] = deque()
                    self._rotation.append(tp)
                queue.append(attempt)
                self._waiting_count += 1

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
        if event.payload.queue not in self._queues:
            # Workers of other queues share the topic for now; a dedicated queue should
            # get a topic of its own so workers stop reading past others' tasks.
            return None
        return Attempt(event=event, offsets=[(tp, record.offset)])

    # Running ------------------------------------------------------------------------

    def _dispatch(self) -> None:
        if self._stopping:
            return
        while self._waiting_count and not self._slots.full:
            started = False
            for _ in range(len(self._rotation)):
                tp = self._rotation[0]
                self._rotation.rotate(-1)
                attempt = self._take_startable(self._waiting[tp])
                if attempt is None:
                    continue
                self._waiting_count -= 1
                self._start(attempt)
                started = True
                if self._slots.full:
                    break
            if not started:
                break
        self._capacity.set()

    def _take_startable(self, queue: deque[Attempt]) -> Attempt | None:
        for index, attempt in enumerate(itertools.islice(queue, _SCAN_LIMIT)):
            if self._slots.can_start(attempt.scheduled.type):
                del queue[index]
                return attempt
        return None

    def _start(self, attempt: Attempt) -> None:
        scheduled = attempt.scheduled
        event = attempt.event
        attempt.started_at = datetime.now(UTC)
        if event.run_id in self._cancelled_runs:
            attempt.abort = TaskCancelled("the run was cancelled")
            self._report(attempt, self._failed(attempt, attempt.abort))
            return
        self._slots.acquire(scheduled.type)
        self._metrics_of(scheduled.type).running.inc()
        attempt.log_fields = {
            "run_id": event.run_id,
            "task_id": scheduled.task_id,
            "attempt": scheduled.attempt,
        }
        attempt.context = TaskContext(
            tenant=event.tenant,
            run_id=event.run_id,
            task_id=scheduled.task_id,
            attempt=scheduled.attempt,
            task_type=scheduled.type,
            idempotency_key=scheduled.idempotency_key,
            worker_id=self._worker_id,
            logger=TaskLogger(attempt.log_fields),
        )
        if self._artifacts is not None:
            attempt.context.artifacts = self._artifacts(attempt.context)
        interval_ms = float(self._settings.heartbeat_interval_ms)
        if scheduled.heartbeat_timeout_ms > 0:
            interval_ms = min(interval_ms, scheduled.heartbeat_timeout_ms / 3)
        attempt.heartbeat_interval_s = max(_MIN_HEARTBEAT_S, interval_ms / 1000)
        attempt.next_heartbeat = time.monotonic() + attempt.heartbeat_interval_s
        self._running.add(attempt)
        self._by_run.setdefault(event.run_id, set()).add(attempt)
        # Unnamed: a name per task is a measurable share of an instant task's cost.
        attempt.task = asyncio.create_task(self._run(attempt))
        if not self._unannounced:
            # Callbacks run in order: this one after the first step of the task above.
            asyncio.get_running_loop().call_soon(self._announce)
        self._unannounced.append(attempt)

    def _announce(self) -> None:
        """Send ``task.started`` for the attempts still running after their first step."""
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

    async def _run(self, attempt: Attempt) -> None:
        attempt.stepped = True
        context = attempt.context
        assert context is not None
        token = context.activate()
        try:
            if attempt.abort is not None:
                raise attempt.abort
            output_json = await self._execute(attempt, context)
            outcome = self._events.completed(attempt, output_json)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if attempt.abort is None or task is None:
                self._release(attempt)
                raise
            task.uncancel()
            outcome = self._failed(attempt, attempt.abort)
        except Exception as error:
            outcome = self._failed(attempt, error)
        finally:
            _reset(token)
        self._release(attempt)
        self._report(attempt, outcome)

    async def _execute(self, attempt: Attempt, context: TaskContext) -> bytes:
        scheduled = attempt.scheduled
        executor = self._executors.get(scheduled.type)
        if executor is None:
            raise ExecutorUnavailable(
                f"this worker has no executor for task type {scheduled.type!r}",
                type_="UnknownTaskType",
            )
        try:
            params = json.loads(scheduled.params_json) if scheduled.params_json else {}
        except ValueError as error:
            raise InvalidParams(f"params are not JSON: {error}") from None
        if scheduled.timeout_ms > 0:
            async with asyncio.timeout(scheduled.timeout_ms / 1000):
                output = await executor.execute(params, context)
        else:
            output = await executor.execute(params, context)
        try:
            return json.dumps(output, separators=(",", ":"), allow_nan=False).encode()
        except (TypeError, ValueError) as error:
            raise TaskFailure(
                f"the task's output is not JSON: {error}", retryable=False, type_="InvalidOutput"
            ) from None

    def _release(self, attempt: Attempt) -> None:
        """Give the attempt's slot back and send its remaining log lines."""
        if attempt not in self._running:
            return
        self._running.discard(attempt)
        runs = self._by_run.get(attempt.event.run_id)
        if runs is not None:
            runs.discard(attempt)
            if not runs:
                del self._by_run[attempt.event.run_id]
        self._slots.release(attempt.scheduled.type)
        self._metrics_of(attempt.scheduled.type).running.dec()
        log = self._events.log(attempt)
        if log is not None:
            self._reporter.emit([log])
        self._dispatch()

    def _report(self, attempt: Attempt, outcome: Event) -> None:
        self._active.pop(attempt.key, None)
        metrics = self._metrics_of(attempt.scheduled.type)
        if attempt.abort is not None:
            result = "cancelled" if isinstance(attempt.abort, TaskCancelled) else "shutdown"
        else:
            result = "completed" if outcome.type == topics.TASK_COMPLETED else "failed"
        metrics.finished(result).inc()
        if attempt.started_at is not None:
            metrics.duration.observe((outcome.time - attempt.started_at).total_seconds())
        offsets = attempt.offsets
        self._remember(attempt, outcome)
        self._reporter.emit([outcome], on_published=lambda: self._outcome_published(offsets))

    def _replay(self, outcome: Event, offset: tuple[TopicPartition, int]) -> None:
        REPLAYED_OUTCOMES.inc()
        self._reporter.emit([outcome], on_published=lambda: self._outcome_published([offset]))

    def _remember(self, attempt: Attempt, outcome: Event) -> None:
        if isinstance(attempt.abort, WorkerShutdown):
            return  # not run to its end here: another worker must run it
        key = attempt.key
        previous = self._finished.pop(key, None)
        if previous is not None:
            self._finished_bytes -= _output_size(previous)
        self._finished[key] = outcome
        self._finished_bytes += _output_size(outcome)
        while self._finished and (
            len(self._finished) > self._settings.finished_attempts_memory
            or self._finished_bytes > _FINISHED_OUTPUT_BYTES
        ):
            _, dropped = self._finished.popitem(last=False)
            self._finished_bytes -= _output_size(dropped)

    def _outcome_published(self, offsets: Sequence[tuple[TopicPartition, int]]) -> None:
        for tp, offset in offsets:
            tracker = self._offsets.get(tp)
            if tracker is not None:
                tracker.done(offset)
        self._commit_wanted.set()

    def _metrics_of(self, task_type: str) -> _TypeMetrics:
        # Types come from events: only known ones become labels, to bound cardinality.
        label = task_type if task_type in self._executors else "unknown"
        metrics = self._metrics.get(label)
        if metrics is None:
            metrics = self._metrics[label] = _TypeMetrics(label)
        return metrics

    def _abort(self, attempt: Attempt, reason: TaskAborted) -> None:
        if attempt.abort is not None or attempt.task is None or attempt.task.done():
            return
        attempt.abort = reason
        if attempt.context is not None:
            attempt.context.abort()
        if attempt.stepped:
            # Cancelled before its first step, a coroutine would not run at all: no
            # outcome, no slot back. Not yet stepped, it sees the abort and stops.
            attempt.task.cancel()

    def _failed(self, attempt: Attempt, error: BaseException) -> Event:
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

    # Background loops ---------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        default_s = self._settings.heartbeat_interval_ms / 1000
        while True:
            now = time.monotonic()
            events: list[Event] = []
            for attempt in self._running:
                log = self._events.log(attempt)
                if log is not None:
                    events.append(log)
                if attempt.next_heartbeat > now or attempt.context is None:
                    continue
                attempt.next_heartbeat = now + attempt.heartbeat_interval_s
                events.append(self._events.heartbeat(attempt))
            self._reporter.emit(events)
            next_due = min((a.next_heartbeat for a in self._running), default=now + default_s)
            await asyncio.sleep(max(_MIN_HEARTBEAT_S, next_due - time.monotonic()))

    async def _commit_loop(self) -> None:
        # At most one commit per interval: each costs a request here and in the broker.
        interval_s = self._settings.commit_interval_ms / 1000
        while True:
            await self._commit_wanted.wait()
            self._commit_wanted.clear()
            began = time.monotonic()
            await self._commit()
            await asyncio.sleep(began + interval_s - time.monotonic())

    async def _commit(self, partitions: set[TopicPartition] | None = None) -> None:
        consumer = self._consumer
        if consumer is None:
            return
        async with self._commit_lock:
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
                await consumer.commit(offsets)
            except Exception as error:
                # Typically a rebalance: the next owner re-runs what is uncommitted and
                # the scheduler drops the duplicate outcomes.
                _log.warning("offset commit failed", extra={"error": repr(error)})
                return
            for tp, offset in offsets.items():
                still_tracked = self._offsets.get(tp)
                if still_tracked is not None:
                    still_tracked.committed(offset)

    async def _on_cancelled(self, events: Sequence[Event]) -> None:
        horizon = self._started_at - timedelta(seconds=self._settings.cancellation_memory_s)
        for event in events:
            if not is_type(event, topics.WORKFLOW_CANCELLED) or event.time < horizon:
                continue
            self._cancelled_runs[event.run_id] = event.time
            reason = event.payload.reason or "the run was cancelled"
            for attempt in list(self._by_run.get(event.run_id, ())):
                _log.info("aborting a task of a cancelled run", extra=attempt.log_fields)
                self._abort(attempt, TaskCancelled(reason))
        forget_before = datetime.now(UTC) - timedelta(seconds=self._settings.cancellation_memory_s)
        for run_id, cancelled_at in list(self._cancelled_runs.items()):
            if cancelled_at < forget_before:
                del self._cancelled_runs[run_id]

    async def _partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._commit(revoked)
        for tp in revoked:
            for attempt in self._waiting.pop(tp, ()):
                self._active.pop(attempt.key, None)
                self._waiting_count -= 1
            self._offsets.pop(tp, None)
            with contextlib.suppress(ValueError):
                self._rotation.remove(tp)
        self._capacity.set()


class _TypeMetrics:
    """One task type's metric series, looked up once instead of at every task."""

    def __init__(self, label: str) -> None:
        self.running = TASKS_RUNNING.labels(label)
        self.duration = TASK_DURATION.labels(label)
        self._label = label
        self._finished: dict[str, Counter] = {}

    def finished(self, outcome: str) -> Counter:
        counter = self._finished.get(outcome)
        if counter is None:
            counter = self._finished[outcome] = TASKS_FINISHED.labels(self._label, outcome)
        return counter


class _RebalanceListener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, worker: Worker) -> None:
        self._worker = worker

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self._worker._partitions_revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        _log.info(
            "task partitions assigned",
            extra={"partitions": sorted(tp.partition for tp in assigned)},
        )


def _output_size(outcome: Event) -> int:
    payload = outcome.payload
    return len(payload.output_json) if isinstance(payload, task_pb2.TaskCompleted) else 0


def _reset(token: Any) -> None:
    with contextlib.suppress(ValueError):
        token.var.reset(token)


async def _cancel(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
