"""One run's state and how events, timers and controls change it (the engine).

A :class:`RunState` is loaded with its tasks and timers, changed by the methods below
(each takes ``now``), and then written back: it records what changed (tasks, run row,
transitions, timers set and cleared, dead letters) and the events to publish, so the
store can persist one batch of runs with a few statements in one transaction.

Stale input is ignored rather than rejected: a result or heartbeat for another attempt
than the current one, or for a task no longer out with the workers, changes nothing
(duplicates, reordering and late timers are normal at-least-once life).
"""

from __future__ import annotations

import functools
import json
import random
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from google.protobuf.message import Message

from interlock.common import conditions, topics
from interlock.common.events import Event
from interlock.common.templates import TemplateError, render
from interlock.common.topics import EventType
from interlock.events.v1 import definition_pb2, task_pb2, workflow_pb2
from interlock.scheduler.domain.backoff import retry_delay_ms
from interlock.scheduler.domain.dag import compensation_order, ready_tasks
from interlock.scheduler.domain.delays import delay_due
from interlock.scheduler.domain.errors import InvalidDelayError
from interlock.scheduler.domain.rules import (
    DECIDED_EARLY,
    RUN_AFTER_FAILURE,
    Outcome,
    Verdict,
    judge,
)
from interlock.scheduler.domain.states import (
    ENDED_RUN,
    TERMINAL_TASK,
    RunStatus,
    TaskStatus,
    check_run_transition,
    check_task_transition,
)

SOURCE = "scheduler"
"""``ce_source`` of every event the scheduler publishes."""
DELAY_TYPE = "delay"
MAX_PARAMS_BYTES = 524_288
"""Largest rendered params a ``task.scheduled`` carries (templates may inline upstream
outputs of up to 256 KiB each): beyond it the task fails, not retryable, rather than
making an event the broker refuses. Default: 512 KiB. Also the most final-task outputs
``workflow.completed`` repeats: beyond it they are left out (each stays in its own
``task.completed``)."""
"""Task type the scheduler runs itself, with a durable timer."""
COMPENSATION_PREFIX = "compensate:"
"""Task id prefix of the compensation of a task: ``compensate:<task id>``."""
NO_LANE = ""
"""The lane (``tasks.lane``) of a delay, which no worker takes: the reconciler's queries
of tasks waiting for a worker leave delays out by this column alone."""


@dataclass(frozen=True)
class AttemptBounds:
    """Bounds the scheduler puts on an attempt whose task sets none (issue 22).

    With them no attempt stays ``running`` forever when its outcome was lost (a broker
    that restarted empty, a worker that vanished), even if the user set no timeout.
    """

    lost_after_ms: int = 60_000
    """A running attempt of a task without a heartbeat timeout that sends nothing
    (no heartbeat, no outcome: workers heartbeat every running task every second)
    for this long is presumed lost and dispatched again *as the same attempt* (same
    number, same idempotency key), outside the retry budget. 0: never. Default: 60 s."""
    start_to_close_ms: int = 86_400_000
    """Start-to-close timeout of a task that sets none: the attempt fails (retryable,
    within the retry budget). Bounds an executor that hangs while its worker keeps
    heartbeating. 0: none. Default: 1 day."""


_bounds = AttemptBounds()


def configure_attempt_bounds(bounds: AttemptBounds) -> None:
    """Set the bounds of every run of this process (from the scheduler's settings)."""
    global _bounds
    _bounds = bounds


def attempt_bounds() -> AttemptBounds:
    """The bounds in force."""
    return _bounds


class TimerKind(StrEnum):
    """Why a timer exists; one timer per task and kind."""

    RETRY = "retry"
    DELAY = "delay"
    TIMEOUT = "timeout"
    HEARTBEAT = "heartbeat"
    SCHEDULE_TO_START = "schedule_to_start"
    """An attempt not picked up by a worker in time fails (retryable)."""
    RUN_TIMEOUT = "run_timeout"
    """The run's own deadline (task id :data:`RUN_TIMER`): past it the run fails."""


RUN_TIMER = ""
"""Task id of the run's own timers (a run timeout)."""


@dataclass(frozen=True)
class Plan:
    """What a run's definition says, indexed once (definitions never change)."""

    specs: dict[str, definition_pb2.TaskSpec]
    """The definition's tasks by id, in definition order."""
    depends_on: dict[str, list[str]]
    """Each task's upstream task ids."""
    final: frozenset[str]
    """Tasks no other task depends on: their outputs are the run's output."""

    @staticmethod
    def of(started: workflow_pb2.WorkflowStarted) -> Plan:
        """Index a run's definition."""
        tasks = started.definition.tasks
        depends_on = {spec.id: list(spec.depends_on) for spec in tasks}
        upstream = {dep for deps in depends_on.values() for dep in deps}
        return Plan(
            specs={spec.id: spec for spec in tasks},
            depends_on=depends_on,
            final=frozenset(depends_on) - upstream,
        )


def _silence_ms(spec: definition_pb2.TaskSpec) -> int:
    """How long a running attempt may send nothing: its heartbeat timeout, or the bound."""
    return spec.heartbeat_timeout_ms or _bounds.lost_after_ms


class _Outputs(Mapping[str, Any]):
    """Succeeded tasks' outputs for templates, each parsed only when a template reads it."""

    def __init__(self, tasks: dict[str, TaskState]) -> None:
        self._tasks = tasks
        self._parsed: dict[str, Any] = {}

    def __getitem__(self, task_id: str) -> Any:
        task = self._tasks.get(task_id)
        if task is None or task.status is not TaskStatus.SUCCEEDED:
            raise KeyError(task_id)
        if task_id not in self._parsed:
            raw = task.output_json
            self._parsed[task_id] = {"output": json.loads(raw) if raw else None}
        return self._parsed[task_id]

    def __iter__(self) -> Iterator[str]:
        return (t for t, task in self._tasks.items() if task.status is TaskStatus.SUCCEEDED)

    def __len__(self) -> int:
        return sum(1 for _ in self)


class _TaskFacts(Mapping[str, Any]):
    """Every task's status and output (``null`` unless it succeeded), for conditions."""

    def __init__(self, tasks: dict[str, TaskState]) -> None:
        self._tasks = tasks

    def __getitem__(self, task_id: str) -> Any:
        task = self._tasks[task_id]
        succeeded = task.status is TaskStatus.SUCCEEDED and task.output_json
        return {
            "status": task.status.value,
            "output": json.loads(task.output_json) if succeeded and task.output_json else None,
        }

    def __iter__(self) -> Iterator[str]:
        return iter(self._tasks)

    def __len__(self) -> int:
        return len(self._tasks)


@functools.lru_cache(maxsize=4096)
def _condition(text: str) -> conditions.Condition:
    """A task's parsed ``when`` (the workflow service parsed it once already)."""
    return conditions.parse(text)


SKIP_REASONS_KEPT_ON_REOPEN = frozenset({"DelayCancelled"})
"""Skips a failed run's retry or replay leaves alone; every other skipped task is judged
again, since what skipped it (a failure, a skipped upstream) may turn out otherwise."""


@dataclass
class Timer:
    """A durable timer of one task attempt."""

    task_id: str
    kind: TimerKind
    attempt: int
    due_at: datetime


@dataclass
class ErrorInfo:
    """The last error of a task."""

    type: str
    message: str
    retryable: bool
    traceback_excerpt: str = ""

    @staticmethod
    def of(error: workflow_pb2.TaskError) -> ErrorInfo:
        """Copy a :class:`TaskError` message."""
        return ErrorInfo(error.type, error.message, error.retryable, error.traceback_excerpt)

    def to_proto(self) -> workflow_pb2.TaskError:
        """The :class:`TaskError` message."""
        return workflow_pb2.TaskError(
            type=self.type,
            message=self.message,
            retryable=self.retryable,
            traceback_excerpt=self.traceback_excerpt,
        )


@dataclass
class TaskState:
    """One task of a run."""

    task_id: str
    status: TaskStatus = TaskStatus.PENDING
    attempt: int = 0
    attempt_floor: int = 0
    """Attempts made before the last replay or retry; the retry budget counts from here."""
    scheduled_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    params_json: bytes | None = None
    """Resolved params of the current attempt."""
    output_json: bytes | None = None
    error: ErrorInfo | None = None
    worker_id: str = ""
    depends_on: list[str] | None = None
    """Only for compensation tasks: the compensations that must finish first."""

    @property
    def awaits_rerun(self) -> bool:
        """Dead-lettered with a renewed budget and no attempt since: queued for a re-run.

        A retry or replay of its failed run waits for a concurrency slot to re-run it.
        Every attempt raises ``attempt`` above the floor, so a task dead-lettered by
        its attempts never matches until a request renews its budget.
        """
        return self.status is TaskStatus.DEAD_LETTERED and self.attempt_floor == self.attempt


@dataclass
class DeadLetter:
    """A task parked after its last attempt failed."""

    id: str
    task_id: str
    task_type: str
    params_json: bytes
    attempts: int
    error: ErrorInfo


@dataclass
class Transition:
    """A recorded state change; ``task_id`` is ``None`` for the run's own."""

    task_id: str | None
    from_status: str
    to_status: str
    attempt: int
    at: datetime


@dataclass
class RunState:
    """A run with its tasks and timers, and what changed since it was loaded."""

    run_id: str
    tenant: str
    definition: workflow_pb2.WorkflowStarted
    status: RunStatus = RunStatus.PENDING
    created_at: datetime | None = None
    ended_at: datetime | None = None
    tasks: dict[str, TaskState] = field(default_factory=dict)
    timers: dict[tuple[str, TimerKind], Timer] = field(default_factory=dict)
    uniform: Callable[[float, float], float] = random.uniform

    is_new: bool = False
    run_changed: bool = False
    changed_tasks: set[str] = field(default_factory=set)
    new_tasks: set[str] = field(default_factory=set)
    """The changed tasks created since the run was loaded: they have no row yet."""
    transitions: list[Transition] = field(default_factory=list)
    timers_set: dict[tuple[str, TimerKind], Timer] = field(default_factory=dict)
    timers_cleared: set[tuple[str, TimerKind]] = field(default_factory=set)
    _unsaved_timers: set[tuple[str, TimerKind]] = field(default_factory=set)
    """Timers set since the run was loaded that had no row before (valid while in
    :attr:`timers_set`: saving clears that)."""
    dead_letters: list[DeadLetter] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    waiting: bool = False
    """Set by :meth:`start` (or :meth:`retry`) for a run that must wait for a
    concurrency slot (the store records it among the waiting runs); :meth:`admit`
    starts (or retries) it."""
    requested_at: datetime | None = None
    """When the run was requested (its start event's time, or its retry's): waiting
    runs start in this order. Default: when it was taken in."""
    withdrawn: bool = False
    """Set by :meth:`cancel` on a run that already ended: the store drops a retry it
    queued for a concurrency slot."""
    traceparent: str | None = None
    """The run's W3C trace context (the span that took its start in), kept with the run:
    every event the run causes belongs to its trace, even one a timer, an admission or
    the reconciler publishes long after. Default: none (events carry no trace)."""
    cause_traceparent: str | None = None
    """The trace context of the event being applied, set by the caller around
    :func:`apply_event`: the events it causes continue from its span instead."""
    _settled: list[task_pb2.SettledTask] = field(default_factory=list)
    """Tasks skipped or cancelled by the change in progress, published together."""
    plan: Plan | None = None
    """The indexed definition; built from ``definition`` when not given."""
    _specs: dict[str, definition_pb2.TaskSpec] | None = None
    _input: Any = None

    def __post_init__(self) -> None:
        if self.plan is None:
            self.plan = Plan.of(self.definition)

    # -- structure ---------------------------------------------------------------

    @property
    def specs(self) -> dict[str, definition_pb2.TaskSpec]:
        """Every task's spec, compensations included, in definition order."""
        if self._specs is None:
            compensations = {
                task_id: self._compensation_spec(task_id, task.depends_on or [])
                for task_id, task in self.tasks.items()
                if task_id.startswith(COMPENSATION_PREFIX)
            }
            self._specs = (
                {**self._plan.specs, **compensations} if compensations else self._plan.specs
            )
        return self._specs

    @property
    def _plan(self) -> Plan:
        assert self.plan is not None  # set in __post_init__
        return self.plan

    def _compensation_spec(self, task_id: str, depends_on: list[str]) -> definition_pb2.TaskSpec:
        original = self._plan.specs[task_id.removeprefix(COMPENSATION_PREFIX)]
        return definition_pb2.TaskSpec(
            id=task_id,
            type=original.compensate.type,
            params_json=original.compensate.params_json,
            depends_on=depends_on,
            retry=original.retry,
            timeout_ms=original.timeout_ms,
            heartbeat_timeout_ms=original.heartbeat_timeout_ms,
            queue=original.queue,
            priority=original.priority,
        )

    def _is_compensation(self, task_id: str) -> bool:
        return task_id.startswith(COMPENSATION_PREFIX)

    def _original_ids(self) -> list[str]:
        return list(self._plan.depends_on)

    # -- recording ---------------------------------------------------------------

    def _move(self, task: TaskState, target: TaskStatus, now: datetime) -> None:
        check_task_transition(task.status, target)
        self.transitions.append(Transition(task.task_id, task.status, target, task.attempt, now))
        task.status = target
        self.changed_tasks.add(task.task_id)

    def _move_run(self, target: RunStatus, now: datetime) -> None:
        check_run_transition(self.status, target)
        self.transitions.append(Transition(None, self.status, target, 0, now))
        self.status = target
        self.ended_at = now if target in ENDED_RUN else None
        self.run_changed = True

    def _set_timer(self, task: TaskState, kind: TimerKind, due_at: datetime) -> None:
        key = (task.task_id, kind)
        timer = Timer(task.task_id, kind, task.attempt, due_at)
        if key in self.timers and key not in self.timers_set:
            self._unsaved_timers.discard(key)  # the row exists: a clear must delete it
        elif key not in self.timers:
            self._unsaved_timers.add(key)
        self.timers[key] = timer
        self.timers_set[key] = timer
        self.timers_cleared.discard(key)

    def _clear_timer(self, task_id: str, kind: TimerKind) -> None:
        key = (task_id, kind)
        unsaved = key in self._unsaved_timers and key in self.timers_set
        self._unsaved_timers.discard(key)
        if self.timers.pop(key, None) is not None and not unsaved:
            # A timer set and cleared before the run was saved never had a row (an
            # instant task's silence timer): no DELETE for it.
            self.timers_cleared.add(key)
        self.timers_set.pop(key, None)

    def _emit(self, event_type: EventType, payload: Message, now: datetime) -> None:
        self.events.append(
            Event(
                type=event_type,
                payload=payload,
                tenant=self.tenant,
                run_id=self.run_id,
                source=SOURCE,
                time=now,
                traceparent=self.cause_traceparent or self.traceparent,
                tracestate=None,
            )
        )

    # -- scheduling --------------------------------------------------------------

    def start(self, now: datetime, *, limited: bool = False) -> None:
        """Take the run in: start it, or, when concurrency limits apply, hold it.

        Args:
            now: The time.
            limited: A concurrency limit applies (the workflow's or the tenant's): the
                run stays ``pending`` and :attr:`waiting` until :meth:`admit`.
        """
        self.is_new = True
        self.created_at = now
        if limited:
            self.waiting = True
            return
        self._begin(now)

    def admit(self, now: datetime) -> None:
        """Start a run that waited for a concurrency slot, or resume a failed one.

        A failed run queued by :meth:`retry` or :meth:`replay` re-runs the tasks whose
        retry budget the request renewed (:meth:`TaskState.awaits_rerun`).
        """
        if self.status is RunStatus.PENDING:
            self._begin(now)
        elif self.status is RunStatus.FAILED:
            renewed = [task for task in self.tasks.values() if task.awaits_rerun]
            if renewed:
                self._rerun(renewed, now)
            else:  # queued before requests renewed budgets: the whole retry
                self.retry(now)

    def wait(self, reason: str, now: datetime) -> None:
        """Tell the run's watchers why it still waits (``workflow.waiting``)."""
        self._emit(
            topics.WORKFLOW_WAITING,
            workflow_pb2.WorkflowWaiting(
                workflow_name=self.definition.workflow_name,
                workflow_version=self.definition.workflow_version,
                reason=reason,
            ),
            now,
        )

    def _announce_running(self, now: datetime) -> None:
        """Tell the run view the run runs (``workflow.running``): started, or resumed.

        The workflow service's view takes a run's status from run-level events only
        (its tasks it reads from this service), so moving out of ``pending`` or
        ``failed`` is said once per move, not by every task event.
        """
        self._emit(
            topics.WORKFLOW_RUNNING,
            workflow_pb2.WorkflowRunning(
                workflow_name=self.definition.workflow_name,
                workflow_version=self.definition.workflow_version,
            ),
            now,
        )

    def _begin(self, now: datetime) -> None:
        """Create the tasks, start the run, arm its deadline, schedule the ready tasks."""
        for task_id in self._original_ids():
            self.tasks[task_id] = TaskState(task_id)
            self.changed_tasks.add(task_id)
            self.new_tasks.add(task_id)
        self._move_run(RunStatus.RUNNING, now)
        self._announce_running(now)
        timeout_ms = self.definition.definition.timeout_ms
        if timeout_ms > 0:
            deadline = Timer(
                RUN_TIMER, TimerKind.RUN_TIMEOUT, 0, now + timedelta(milliseconds=timeout_ms)
            )
            key = (RUN_TIMER, TimerKind.RUN_TIMEOUT)
            self.timers[key] = self.timers_set[key] = deadline
            self._unsaved_timers.add(key)
        self._advance(now)

    def _context(self) -> dict[str, Any]:
        if self._input is None:
            raw = self.definition.input_json
            self._input = json.loads(raw) if raw else {}
        return {"input": self._input, "tasks": _Outputs(self.tasks)}

    def _schedule(self, task: TaskState, now: datetime) -> None:
        spec = self.specs[task.task_id]
        self._move(task, TaskStatus.SCHEDULED, now)
        task.attempt += 1
        task.scheduled_at, task.started_at, task.ended_at = now, None, None
        task.worker_id = ""
        if spec.type == DELAY_TYPE:
            try:
                due = delay_due(spec.delay, now)
            except InvalidDelayError as error:
                self._fail(task, ErrorInfo("InvalidDelayError", str(error), False), now)
                return
            self._set_timer(task, TimerKind.DELAY, due)
            return
        try:
            raw = spec.params_json
            params = render(json.loads(raw) if raw else {}, self._context())
        except (TemplateError, ValueError) as error:
            self._fail(task, ErrorInfo(type(error).__name__, str(error), False), now)
            return
        params_json = json.dumps(params, ensure_ascii=False).encode()
        if len(params_json) > MAX_PARAMS_BYTES:
            message = f"rendered params have {len(params_json)} bytes; at most {MAX_PARAMS_BYTES}"
            self._fail(task, ErrorInfo("ParamsTooLarge", message, False), now)
            return
        task.params_json = params_json
        self._emit(topics.TASK_SCHEDULED, self._scheduled_payload(task, spec), now)
        if spec.schedule_to_start_timeout_ms > 0:
            self._set_timer(
                task,
                TimerKind.SCHEDULE_TO_START,
                now + timedelta(milliseconds=spec.schedule_to_start_timeout_ms),
            )

    def _scheduled_payload(
        self, task: TaskState, spec: definition_pb2.TaskSpec
    ) -> task_pb2.TaskScheduled:
        return task_pb2.TaskScheduled(
            task_id=task.task_id,
            attempt=task.attempt,
            type=spec.type,
            params_json=task.params_json or b"{}",
            queue=spec.queue,
            priority=spec.priority,
            timeout_ms=spec.timeout_ms,
            heartbeat_timeout_ms=spec.heartbeat_timeout_ms,
            idempotency_key=f"{self.run_id}:{task.task_id}:{task.attempt}",
        )

    def lane_of(self, task_id: str) -> str:
        """The topic (queue and priority band) ``task_id``'s attempts are dispatched on.

        :data:`NO_LANE` for a delay: the scheduler fires it itself, no worker takes it.
        """
        spec = self.specs[task_id]
        if spec.type == DELAY_TYPE:
            return NO_LANE
        return topics.task_topic(spec.queue, spec.priority)

    def republish(self, task_id: str, now: datetime) -> bool:
        """Publish ``task.scheduled`` again for a task still waiting for a worker.

        Returns:
            Whether the task was scheduled (and an event was added).
        """
        task = self.tasks[task_id]
        spec = self.specs[task_id]
        if task.status is not TaskStatus.SCHEDULED or spec.type == DELAY_TYPE:
            return False
        task.scheduled_at = now
        self.changed_tasks.add(task_id)
        self._emit(topics.TASK_SCHEDULED, self._scheduled_payload(task, spec), now)
        return True

    def _advance(self, now: datetime) -> None:
        if self.status in (RunStatus.RUNNING, RunStatus.FAILED):
            self._judge_pending(now)
        self._publish_settled(now)
        if self.status is RunStatus.RUNNING and all(
            self.tasks[task_id].status in TERMINAL_TASK for task_id in self._plan.depends_on
        ):
            self._complete(now)
            return
        if self.status is not RunStatus.FAILED:
            return
        compensations = {
            task_id: task.depends_on or []
            for task_id, task in self.tasks.items()
            if self._is_compensation(task_id)
        }
        if compensations:
            statuses = {task_id: task.status for task_id, task in self.tasks.items()}
            for task_id in ready_tasks(compensations, statuses, TERMINAL_TASK):
                self._schedule(self.tasks[task_id], now)

    def _judge_pending(self, now: datetime) -> None:
        """Run, skip or leave waiting each pending task, by its trigger rule and condition.

        A task is judged once every upstream task ended (``one_success`` and
        ``one_failed`` as soon as one did): like the readiness check before rules, this
        stops at the first upstream task still out, which keeps a change to a wide run
        cheap. Passes repeat while a skip may decide tasks judged before it. Once the
        run failed only cleanup rules (:data:`RUN_AFTER_FAILURE`) may still run a task;
        every other pending task is skipped.
        """
        failed_run = self.status is RunStatus.FAILED
        changed = True
        while changed:
            changed = False
            for task_id, upstream in self._plan.depends_on.items():
                task = self.tasks[task_id]
                if task.status is not TaskStatus.PENDING:
                    continue
                spec = self.specs[task_id]
                rule = spec.trigger_rule
                if failed_run and rule not in RUN_AFTER_FAILURE:
                    self._skip(task, ErrorInfo("RunFailed", "the run failed", False), now)
                    changed = True
                    continue
                if rule not in DECIDED_EARLY and not all(
                    self.tasks[dep].status in TERMINAL_TASK for dep in upstream
                ):
                    continue
                judgement = judge(rule, [(dep, self._outcome(dep)) for dep in upstream])
                if judgement.verdict is Verdict.WAIT:
                    continue
                if judgement.verdict is Verdict.SKIP:
                    error = ErrorInfo(judgement.reason_type, judgement.reason, False)
                    self._skip(task, error, now)
                    changed = True
                elif not spec.when:
                    self._schedule(task, now)
                else:
                    changed = self._schedule_if(task, spec.when, now) or changed

    def _schedule_if(self, task: TaskState, when: str, now: datetime) -> bool:
        """Schedule the task if its condition holds, else skip it; whether it skipped."""
        try:
            holds = conditions.evaluate(
                _condition(when),
                {"input": self._context()["input"], "tasks": _TaskFacts(self.tasks)},
            )
        except conditions.ConditionError as error:
            # Values of the wrong kinds: the definition's mistake, not worth a retry.
            self._move(task, TaskStatus.SCHEDULED, now)
            task.attempt += 1
            task.scheduled_at = now
            self._fail(task, ErrorInfo("ConditionError", f"when: {error}", False), now)
            return False
        if holds:
            self._schedule(task, now)
            return False
        self._skip(task, ErrorInfo("ConditionFalse", f"condition is false: {when}", False), now)
        return True

    def _outcome(self, task_id: str) -> Outcome:
        task = self.tasks[task_id]
        if task.status is TaskStatus.SUCCEEDED:
            return Outcome.SUCCESS
        if task.status is TaskStatus.SKIPPED:
            # A delay whose timer a user cancelled lets its downstream go on.
            cancelled_delay = task.error is not None and task.error.type == "DelayCancelled"
            return Outcome.SUCCESS if cancelled_delay else Outcome.SKIPPED
        if task.status in (TaskStatus.DEAD_LETTERED, TaskStatus.CANCELLED):
            return Outcome.FAILURE
        return Outcome.NOT_DONE

    def _skip(self, task: TaskState, reason: ErrorInfo, now: datetime) -> None:
        """Skip a task that will not run, recording why (the error fields hold it)."""
        self._move(task, TaskStatus.SKIPPED, now)
        task.ended_at = now
        task.error = reason
        self._settled.append(
            task_pb2.SettledTask(
                task_id=task.task_id,
                status=TaskStatus.SKIPPED.value,
                attempt=task.attempt,
                reason=reason.message,
            )
        )

    def _cancel_task(self, task: TaskState, reason: str, now: datetime) -> None:
        self._move(task, TaskStatus.CANCELLED, now)
        task.ended_at = now
        task.error = ErrorInfo("Cancelled", reason, False)
        for kind in TimerKind:
            if kind is not TimerKind.RUN_TIMEOUT:
                self._clear_timer(task.task_id, kind)
        self._settled.append(
            task_pb2.SettledTask(
                task_id=task.task_id,
                status=TaskStatus.CANCELLED.value,
                attempt=task.attempt,
                reason=reason,
            )
        )

    def _publish_settled(self, now: datetime) -> None:
        if self._settled:
            self._emit(topics.TASK_SETTLED, task_pb2.TasksSettled(tasks=self._settled), now)
            self._settled = []

    def _run_output(self) -> bytes:
        """The definition's ``output`` rendered, or the final tasks' outputs.

        Raises:
            TemplateError: The output reads something the run does not have.
        """
        template = self.definition.definition.output_json
        if template:
            output = render(json.loads(template), self._context())
        else:
            output = {
                task_id: json.loads(task.output_json) if task.output_json else None
                for task_id, task in self.tasks.items()
                if task_id in self._plan.final
            }
        return json.dumps(output, ensure_ascii=False).encode()

    def _complete(self, now: datetime) -> None:
        try:
            output_json = self._run_output()
        except (TemplateError, ValueError) as error:
            self._fail_run("", ErrorInfo("OutputError", f"output: {error}", False), now)
            return
        self._clear_timer(RUN_TIMER, TimerKind.RUN_TIMEOUT)
        self._move_run(RunStatus.SUCCEEDED, now)
        self._emit(
            topics.WORKFLOW_COMPLETED,
            workflow_pb2.WorkflowCompleted(
                workflow_name=self.definition.workflow_name,
                workflow_version=self.definition.workflow_version,
                output_json=output_json if len(output_json) <= MAX_PARAMS_BYTES else b"",
            ),
            now,
        )

    # -- worker events -----------------------------------------------------------

    def _current(self, task_id: str, attempt: int) -> TaskState | None:
        task = self.tasks.get(task_id)
        if task is None or task.attempt != attempt:
            return None
        if task.status not in (TaskStatus.SCHEDULED, TaskStatus.RUNNING):
            return None
        if self.specs[task_id].type == DELAY_TYPE:
            return None
        return task

    def _mark_running(
        self, task: TaskState, now: datetime, started_at: datetime | None, worker_id: str = ""
    ) -> None:
        if task.status is not TaskStatus.SCHEDULED:
            return
        self._move(task, TaskStatus.RUNNING, now)
        self._clear_timer(task.task_id, TimerKind.SCHEDULE_TO_START)
        task.started_at = started_at or now
        if worker_id:  # an outcome without a task.started before it names the worker too
            task.worker_id = worker_id
        spec = self.specs[task.task_id]
        if spec.timeout_ms > 0:
            self._set_timer(
                task, TimerKind.TIMEOUT, task.started_at + timedelta(milliseconds=spec.timeout_ms)
            )
        self._arm_silence_timer(task, spec, now)

    def _arm_silence_timer(
        self, task: TaskState, spec: definition_pb2.TaskSpec, now: datetime
    ) -> None:
        """Set the timer that fires when the attempt is silent too long, or runs too long.

        One timer row per running attempt carries both bounds: the heartbeat timeout (or
        :attr:`AttemptBounds.lost_after_ms`) and, for a task without a start-to-close
        timeout of its own, :attr:`AttemptBounds.start_to_close_ms`.
        """
        due: list[datetime] = []
        silence_ms = _silence_ms(spec)
        if silence_ms > 0:
            due.append(now + timedelta(milliseconds=silence_ms))
        default_close = self._default_close_at(task, spec)
        if default_close is not None:
            due.append(default_close)
        if due:
            self._set_timer(task, TimerKind.HEARTBEAT, min(due))

    def _default_close_at(self, task: TaskState, spec: definition_pb2.TaskSpec) -> datetime | None:
        if spec.timeout_ms > 0 or _bounds.start_to_close_ms <= 0 or task.started_at is None:
            return None
        return task.started_at + timedelta(milliseconds=_bounds.start_to_close_ms)

    def task_started(self, task_id: str, attempt: int, worker_id: str, now: datetime) -> None:
        """A worker picked the attempt up."""
        task = self._current(task_id, attempt)
        if task is None:
            return
        task.worker_id = worker_id
        self._mark_running(task, now, None)

    def task_heartbeat(self, task_id: str, attempt: int, now: datetime) -> None:
        """The attempt is alive: push its heartbeat deadline."""
        task = self._current(task_id, attempt)
        if task is None:
            return
        if task.status is TaskStatus.SCHEDULED:
            self._mark_running(task, now, None)
            return
        spec = self.specs[task_id]
        silence_ms = _silence_ms(spec)
        if silence_ms <= 0:
            return
        timer = self.timers.get((task_id, TimerKind.HEARTBEAT))
        half = timedelta(milliseconds=silence_ms / 2)
        if timer is not None and timer.attempt == attempt and timer.due_at - now > half:
            # Far enough away still: pushing it at every heartbeat (one a second per
            # running task) would write a timer row each time.
            return
        self._arm_silence_timer(task, spec, now)

    def task_completed(
        self,
        task_id: str,
        attempt: int,
        output_json: bytes,
        now: datetime,
        started_at: datetime | None = None,
        worker_id: str = "",
    ) -> None:
        """The attempt succeeded: record its output and schedule what became ready."""
        task = self._current(task_id, attempt)
        if task is None:
            return
        self._mark_running(task, now, started_at, worker_id)
        self._succeed(task, output_json or b"null", now)

    def _succeed(self, task: TaskState, output_json: bytes, now: datetime) -> None:
        self._move(task, TaskStatus.SUCCEEDED, now)
        task.output_json = output_json
        task.ended_at = now
        task.error = None
        self._clear_timer(task.task_id, TimerKind.TIMEOUT)
        self._clear_timer(task.task_id, TimerKind.HEARTBEAT)
        self._clear_timer(task.task_id, TimerKind.SCHEDULE_TO_START)
        self._advance(now)

    def task_failed(
        self,
        task_id: str,
        attempt: int,
        error: workflow_pb2.TaskError,
        now: datetime,
        started_at: datetime | None = None,
        worker_id: str = "",
    ) -> None:
        """The attempt failed: retry after a backoff, or dead-letter the task."""
        task = self._current(task_id, attempt)
        if task is None:
            return
        self._mark_running(task, now, started_at, worker_id)
        self._fail(task, ErrorInfo.of(error), now)

    def _fail(self, task: TaskState, error: ErrorInfo, now: datetime) -> None:
        self._move(task, TaskStatus.FAILED, now)
        task.error = error
        task.ended_at = now
        self._clear_timer(task.task_id, TimerKind.TIMEOUT)
        self._clear_timer(task.task_id, TimerKind.HEARTBEAT)
        self._clear_timer(task.task_id, TimerKind.SCHEDULE_TO_START)
        spec = self.specs[task.task_id]
        budget = max(spec.retry.max_attempts, 1)
        if error.retryable and task.attempt - task.attempt_floor < budget:
            self._move(task, TaskStatus.RETRYING, now)
            delay = retry_delay_ms(spec.retry, task.attempt - task.attempt_floor, self.uniform)
            self._set_timer(task, TimerKind.RETRY, now + timedelta(milliseconds=delay))
            return
        self._dead_letter(task, spec, error, now)

    def _dead_letter(
        self, task: TaskState, spec: definition_pb2.TaskSpec, error: ErrorInfo, now: datetime
    ) -> None:
        self._move(task, TaskStatus.DEAD_LETTERED, now)
        letter = DeadLetter(
            id=str(uuid.uuid4()),
            task_id=task.task_id,
            task_type=spec.type,
            params_json=task.params_json or spec.params_json or b"{}",
            attempts=task.attempt,
            error=error,
        )
        self.dead_letters.append(letter)
        self._emit(
            topics.TASK_DEAD_LETTERED,
            task_pb2.TaskDeadLettered(
                task_id=task.task_id,
                attempts=task.attempt,
                dead_letter_id=letter.id,
                last_error=error.to_proto(),
            ),
            now,
        )
        if self._is_compensation(task.task_id):
            self._advance(now)
            return
        if self.status in (RunStatus.RUNNING, RunStatus.PAUSED):
            self._fail_run(task.task_id, error, now)
        else:
            self._advance(now)  # cleanup tasks of a failed run may wait for this one

    def _fail_run(self, failed_task_id: str, error: ErrorInfo, now: datetime) -> None:
        if self.status is RunStatus.PAUSED:
            self._move_run(RunStatus.RUNNING, now)
        self._move_run(RunStatus.FAILED, now)
        self._emit(
            topics.WORKFLOW_FAILED,
            workflow_pb2.WorkflowFailed(
                workflow_name=self.definition.workflow_name,
                workflow_version=self.definition.workflow_version,
                failed_task_id=failed_task_id,
                error=error.to_proto(),
            ),
            now,
        )
        self._add_compensations(now)
        self._advance(now)

    def _add_compensations(self, now: datetime) -> None:
        originals = self.definition.definition.tasks
        succeeded = [
            spec.id
            for spec in originals
            if spec.HasField("compensate")
            and self.tasks[spec.id].status is TaskStatus.SUCCEEDED
            and f"{COMPENSATION_PREFIX}{spec.id}" not in self.tasks
        ]
        if not succeeded:
            return
        order = compensation_order(
            {spec.id: list(spec.depends_on) for spec in originals}, succeeded
        )
        for task_id, after in order.items():
            compensation_id = f"{COMPENSATION_PREFIX}{task_id}"
            self.tasks[compensation_id] = TaskState(
                compensation_id, depends_on=[f"{COMPENSATION_PREFIX}{dep}" for dep in after]
            )
            self.changed_tasks.add(compensation_id)
            self.new_tasks.add(compensation_id)
        self._specs = None

    # -- timers ------------------------------------------------------------------

    def fire_due_timers(self, now: datetime) -> int:
        """Fire every timer of the run due at ``now``.

        Returns:
            How many timers fired.
        """
        due = sorted(
            (timer for timer in self.timers.values() if timer.due_at <= now),
            key=lambda timer: timer.due_at,
        )
        for timer in due:
            self._clear_timer(timer.task_id, timer.kind)
            if timer.kind is TimerKind.RUN_TIMEOUT:
                self._time_out(now)
                continue
            task = self.tasks.get(timer.task_id)
            if task is not None and task.attempt == timer.attempt:
                self._fire(task, timer.kind, now)
        return len(due)

    def _fire(self, task: TaskState, kind: TimerKind, now: datetime) -> None:
        if kind is TimerKind.RETRY and task.status is TaskStatus.RETRYING:
            # A paused run keeps the task retrying; resume schedules it.
            if self._may_schedule(task.task_id):
                self._schedule(task, now)
        elif kind is TimerKind.DELAY and task.status is TaskStatus.SCHEDULED:
            self._move(task, TaskStatus.RUNNING, now)
            task.started_at = task.scheduled_at
            output = json.dumps({"fired_at": now.isoformat()}).encode()
            # No worker reports a delay: this event gives views (the run projection)
            # its times and output. The scheduler ignores it when it comes back.
            self._emit(topics.TASK_COMPLETED, self._delay_completed(task, output), now)
            self._succeed(task, output, now)
        elif kind is TimerKind.HEARTBEAT and task.status is TaskStatus.RUNNING:
            spec = self.specs[task.task_id]
            message = f"attempt {task.attempt} timed out"
            close_at = self._default_close_at(task, spec)
            if close_at is not None and close_at <= now:
                self._fail(task, ErrorInfo("StartToCloseTimeout", message, True), now)
            elif spec.heartbeat_timeout_ms > 0:
                self._fail(task, ErrorInfo("HeartbeatTimeout", message, True), now)
            else:
                self._redispatch(task, now)
        elif kind is TimerKind.TIMEOUT and task.status is TaskStatus.RUNNING:
            message = f"attempt {task.attempt} timed out"
            self._fail(task, ErrorInfo("StartToCloseTimeout", message, True), now)
        elif kind is TimerKind.SCHEDULE_TO_START and task.status is TaskStatus.SCHEDULED:
            waited_ms = self.specs[task.task_id].schedule_to_start_timeout_ms
            message = (
                f"attempt {task.attempt} was not started by a worker within {waited_ms} ms "
                f"(queue {self.specs[task.task_id].queue or 'default'!r})"
            )
            self._fail(task, ErrorInfo("ScheduleToStartTimeout", message, True), now)
            self._publish_settled(now)

    def _time_out(self, now: datetime) -> None:
        """The run passed its ``timeout``: cancel what is out, fail the run."""
        if self.status not in (RunStatus.RUNNING, RunStatus.PAUSED):
            return
        timeout_ms = self.definition.definition.timeout_ms
        reason = f"the run timed out after {timeout_ms} ms"
        for task in self.tasks.values():
            if task.status in (TaskStatus.SCHEDULED, TaskStatus.RUNNING, TaskStatus.RETRYING):
                self._cancel_task(task, reason, now)
        self._fail_run("", ErrorInfo("RunTimeout", reason, False), now)

    def _redispatch(self, task: TaskState, now: datetime) -> None:
        """The attempt went silent: its worker vanished or its outcome was lost.

        Not the task's failure, so not counted against its retries: the same attempt
        (same number and idempotency key) goes back to the queue, at least once.
        """
        self._move(task, TaskStatus.SCHEDULED, now)
        self._clear_timer(task.task_id, TimerKind.TIMEOUT)
        task.started_at = None
        task.worker_id = ""
        task.scheduled_at = now
        self._emit(
            topics.TASK_SCHEDULED, self._scheduled_payload(task, self.specs[task.task_id]), now
        )

    def _delay_completed(self, task: TaskState, output_json: bytes) -> task_pb2.TaskCompleted:
        completed = task_pb2.TaskCompleted(
            task_id=task.task_id, attempt=task.attempt, worker_id=SOURCE, output_json=output_json
        )
        if task.scheduled_at is not None:
            completed.scheduled_at.FromDatetime(task.scheduled_at)
            completed.started_at.FromDatetime(task.scheduled_at)
        return completed

    def _may_schedule(self, task_id: str) -> bool:
        if self._is_compensation(task_id):
            return self.status is RunStatus.FAILED
        if self.status is RunStatus.FAILED:
            # Cleanup tasks and failure handlers still run (and retry) in a failed run.
            return self.specs[task_id].trigger_rule in RUN_AFTER_FAILURE
        return self.status is RunStatus.RUNNING

    def reschedule_delay(self, task_id: str, due_at: datetime) -> bool:
        """Move a pending delay's timer to ``due_at``.

        Returns:
            Whether the task had a pending delay.
        """
        timer = self.timers.get((task_id, TimerKind.DELAY))
        if timer is None:
            return False
        self._set_timer(self.tasks[task_id], TimerKind.DELAY, due_at)
        return True

    def cancel_delay(self, task_id: str, now: datetime) -> bool:
        """Cancel a pending delay: the task is skipped and its downstream tasks continue.

        Returns:
            Whether the task had a pending delay.
        """
        if (task_id, TimerKind.DELAY) not in self.timers:
            return False
        task = self.tasks[task_id]
        self._clear_timer(task_id, TimerKind.DELAY)
        self._skip(task, ErrorInfo("DelayCancelled", "the delay was cancelled", False), now)
        self._advance(now)
        return True

    # -- control -----------------------------------------------------------------

    def cancel(self, reason: str, requested_by: str, now: datetime) -> None:
        """Stop the run: cancel unfinished tasks, drop timers, tell workers to abort.

        A run that already ended only withdraws a retry it may have queued for a
        concurrency slot (:attr:`withdrawn`).
        """
        if self.status in ENDED_RUN:
            self.withdrawn = True
            return
        self._move_run(RunStatus.CANCELLED, now)
        why = f"the run was cancelled: {reason}" if reason else "the run was cancelled"
        for task in self.tasks.values():
            if task.status in (
                TaskStatus.PENDING,
                TaskStatus.SCHEDULED,
                TaskStatus.RUNNING,
                TaskStatus.RETRYING,
            ):
                self._cancel_task(task, why, now)
        for task_id, kind in list(self.timers):
            self._clear_timer(task_id, kind)
        self._publish_settled(now)
        self._emit(
            topics.WORKFLOW_CANCELLED,
            workflow_pb2.WorkflowCancelled(
                workflow_name=self.definition.workflow_name,
                workflow_version=self.definition.workflow_version,
                reason=reason,
                requested_by=requested_by,
            ),
            now,
        )

    def pause(self, now: datetime) -> None:
        """Hold new scheduling; attempts already out finish."""
        if self.status is RunStatus.RUNNING:
            self._move_run(RunStatus.PAUSED, now)

    def resume(self, now: datetime) -> None:
        """Continue a paused run, scheduling retries that came due meanwhile."""
        if self.status is not RunStatus.PAUSED:
            return
        self._move_run(RunStatus.RUNNING, now)
        self._schedule_held_retries(now)
        self._advance(now)

    def _schedule_held_retries(self, now: datetime) -> None:
        for task in list(self.tasks.values()):
            if (
                task.status is TaskStatus.RETRYING
                and (task.task_id, TimerKind.RETRY) not in self.timers
                and self._may_schedule(task.task_id)
            ):
                self._schedule(task, now)

    def retry(self, now: datetime, *, limited: bool = False) -> int:
        """Re-schedule the run's dead-lettered tasks with a fresh retry budget.

        Retries that came due while the run was failed are scheduled too.

        Args:
            now: The time.
            limited: A concurrency limit applies: the run ended and gave its slot back,
                so it queues for one again (:attr:`waiting`, in the order of this
                request) and stays failed until :meth:`admit` retries it.

        Returns:
            How many tasks were (or, queued, will be) scheduled; 0 (and nothing
            changes) unless the run failed.
        """
        if self.status is not RunStatus.FAILED:
            return 0
        failed = [
            task
            for task_id, task in self.tasks.items()
            if task.status is TaskStatus.DEAD_LETTERED and not self._is_compensation(task_id)
        ]
        if not failed:
            return 0
        if limited:
            self._queue_rerun(failed, now)
            return len(failed)
        self._rerun(failed, now)
        return len(failed)

    def replay(self, task_id: str, now: datetime, *, limited: bool = False) -> int | None:
        """Re-run a dead-lettered task with a fresh retry budget, resuming a failed run.

        Args:
            task_id: The dead-lettered task.
            now: The time.
            limited: A concurrency limit applies: a failed run gave its slot back, so,
                like :meth:`retry`, it queues for one again (:attr:`waiting`) and stays
                failed until :meth:`admit` re-runs the task. A compensation task runs
                at once (it does not resume the run).

        Returns:
            The attempt that runs (now, or once the run gets its slot); ``None`` (and
            nothing changes) unless the task was dead-lettered and its run failed or
            running.
        """
        task = self.tasks.get(task_id)
        if task is None or task.status is not TaskStatus.DEAD_LETTERED:
            return None
        if self._is_compensation(task_id):
            if self.status is not RunStatus.FAILED:
                return None
        elif self.status is RunStatus.FAILED:
            if limited:
                self._queue_rerun([task], now)
                return task.attempt + 1
            self._rerun([task], now)
            return task.attempt
        elif self.status is not RunStatus.RUNNING:
            return None
        task.attempt_floor = task.attempt
        self._schedule(task, now)
        self._schedule_held_retries(now)
        self._advance(now)
        return task.attempt

    def _queue_rerun(self, tasks: list[TaskState], now: datetime) -> None:
        """Renew the tasks' retry budgets and queue the failed run for a concurrency slot.

        The renewed budget (``attempt_floor`` = ``attempt``) is what :meth:`admit` reads
        to know which tasks to re-run, so it survives a restart with the task rows.
        """
        for task in tasks:
            task.attempt_floor = task.attempt
            self.changed_tasks.add(task.task_id)
        self.waiting = True
        self.requested_at = now

    def _rerun(self, tasks: list[TaskState], now: datetime) -> None:
        """Resume a failed run: re-run ``tasks`` with fresh budgets, judge skipped ones again."""
        self._move_run(RunStatus.RUNNING, now)
        self._announce_running(now)
        self._reopen_skipped(now)
        for task in tasks:
            task.attempt_floor = task.attempt
            self._schedule(task, now)
        self._schedule_held_retries(now)
        self._advance(now)

    def _reopen_skipped(self, now: datetime) -> None:
        """A failed run resumes: tasks skipped since are judged again (back to pending)."""
        for task_id in self._plan.depends_on:
            task = self.tasks[task_id]
            if task.status is TaskStatus.SKIPPED and (
                task.error is None or task.error.type not in SKIP_REASONS_KEPT_ON_REOPEN
            ):
                self._move(task, TaskStatus.PENDING, now)
                task.ended_at = None
                task.error = None
