"""Execution documents: what every event says about a run, merged so order does not matter.

Events arrive duplicated, late and out of order, and several copies of a consumer may
see a run's events across a rebalance. So a document is not a log replayed in order but
a *merge*: every fact is folded into fields that only ever move one way (the earliest
schedule time, the latest heartbeat, an attempt's outcome, the latest time each kind of
run event was seen), and everything shown (run and task statuses, durations, waiting
times, search keys) is derived from those fields. Folding the same facts in any order,
any number of times, gives the same document: a late ``task.started`` never turns a
succeeded attempt back to running, a duplicated ``workflow.failed`` changes nothing.

The document is a plain dict, the shape MongoDB stores (times are timezone-aware UTC
datetimes truncated to milliseconds, which is what BSON keeps)::

    _id, tenant, workflow, version, labels, status, input_json, input_bytes,
    input_truncated, created_at, started_at, finished_at, duration_ms, last_event_at,
    failed_task_id, error, tasks: [{id, type, status, attempts: [{attempt, worker_id,
    scheduled_at, started_at, finished_at, duration_ms, queue_wait_ms, outcome, error,
    output_bytes, last_heartbeat_at}], dead_lettered}], timeline: [{time, event, task_id,
    attempt, id}], run_events: {started, succeeded, failed, cancelled, retry, pause,
    resume}, task_order, search_keys, expires_at (and, written by the store and the
    reconciler: rev, reconciled_at)

``search_keys`` is one array for every exact search condition, each key prefixed by
what it names (:class:`SearchKey`): the words ``q`` matches, the labels, task and error
types, the workflow, a workflow in one status. One multikey index serves them all, where
one index per condition made every document write pay for each index.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from interlock.common.statuses import ENDED_RUN, RunStatus, TaskStatus

__all__ = [
    "MAX_INPUT_BYTES",
    "MAX_KEYWORDS",
    "MAX_TIMELINE",
    "AttemptFinished",
    "AttemptHeartbeat",
    "AttemptScheduled",
    "AttemptStarted",
    "Fact",
    "RunControlled",
    "RunEnded",
    "RunStarted",
    "SearchKey",
    "TaskDeadLettered",
    "apply",
    "keywords_of",
    "millis",
]

MAX_INPUT_BYTES = 64 * 1024
"""Largest run input kept in the document; a larger one is left out (``input_truncated``)."""
MAX_TIMELINE = 200
"""Timeline entries kept per run: the latest ones."""
MAX_KEYWORDS = 500
"""Search keywords kept per run."""
MAX_MESSAGE_KEYWORDS = 40
"""Words taken from each error message for search."""

_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def millis(time: datetime) -> datetime:
    """``time`` truncated to milliseconds, the precision BSON dates keep."""
    return time.replace(microsecond=time.microsecond // 1000 * 1000)


class SearchKey:
    """The keys of ``search_keys``: one prefix per kind of search condition."""

    @staticmethod
    def word(word: str) -> str:
        """A lower-cased word ``q`` may name."""
        return f"q:{word}"

    @staticmethod
    def label(pair: str) -> str:
        """A ``key=value`` label."""
        return f"label:{pair}"

    @staticmethod
    def task_type(task_type: str) -> str:
        """The type of one of the run's tasks."""
        return f"type:{task_type}"

    @staticmethod
    def error_type(error_type: str) -> str:
        """The type of an attempt's, a dead letter's or the run's error."""
        return f"error:{error_type}"

    @staticmethod
    def workflow(workflow: str) -> str:
        """The run's workflow."""
        return f"workflow:{workflow}"

    @staticmethod
    def status_workflow(status: str, workflow: str) -> str:
        """The commonest search: a workflow's runs in one status."""
        return f"status:{status}:{workflow}"


def keywords_of(text: str) -> list[str]:
    """The lower-cased words of ``text``, in order (what ``q`` matches against)."""
    return _WORD.findall(text.lower())


@dataclass(frozen=True, kw_only=True)
class Fact:
    """What one event says about a run.

    Attributes:
        event_id: The event's id (deduplicates timeline entries).
        tenant: The run's tenant.
        run_id: The run.
        time: When the event happened (milliseconds).
    """

    event_id: str
    tenant: str
    run_id: str
    time: datetime


@dataclass(frozen=True, kw_only=True)
class RunStarted(Fact):
    """``workflow.started``: the run's identity, input and tasks."""

    workflow: str
    version: int
    labels: Mapping[str, str] = field(default_factory=dict)
    input_json: str = ""
    task_types: Mapping[str, str] = field(default_factory=dict)
    """Task id → type, in definition order."""


@dataclass(frozen=True, kw_only=True)
class RunEnded(Fact):
    """``workflow.completed/failed/cancelled``, or the scheduler's answer to a reconciler."""

    status: RunStatus
    workflow: str = ""
    version: int = 0
    failed_task_id: str = ""
    error: Mapping[str, Any] | None = None


@dataclass(frozen=True, kw_only=True)
class RunControlled(Fact):
    """``workflow.control``: pause, resume or retry (cancel ends with ``workflow.cancelled``)."""

    action: str


@dataclass(frozen=True, kw_only=True)
class AttemptScheduled(Fact):
    """``task.scheduled``."""

    task_id: str
    attempt: int
    task_type: str


@dataclass(frozen=True, kw_only=True)
class AttemptStarted(Fact):
    """``task.started``."""

    task_id: str
    attempt: int
    worker_id: str


@dataclass(frozen=True, kw_only=True)
class AttemptHeartbeat(Fact):
    """``task.heartbeat``: only moves the attempt's last heartbeat (no timeline entry)."""

    task_id: str
    attempt: int
    worker_id: str


@dataclass(frozen=True, kw_only=True)
class AttemptFinished(Fact):
    """``task.completed`` (``error`` is ``None``) or ``task.failed``."""

    task_id: str
    attempt: int
    worker_id: str
    started_at: datetime | None = None
    scheduled_at: datetime | None = None
    output_bytes: int = 0
    error: Mapping[str, Any] | None = None


@dataclass(frozen=True, kw_only=True)
class TaskDeadLettered(Fact):
    """``task.dead_lettered``."""

    task_id: str
    attempts: int
    error: Mapping[str, Any] | None = None


_CONTROL_CLOCKS = {"pause": "pause", "resume": "resume", "retry": "retry"}
_ENDED_CLOCKS = {
    RunStatus.SUCCEEDED: "succeeded",
    RunStatus.FAILED: "failed",
    RunStatus.CANCELLED: "cancelled",
}


def apply(
    document: Mapping[str, Any] | None, facts: Iterable[Fact], *, retention: timedelta
) -> dict[str, Any]:
    """Fold ``facts`` into ``document`` (``None``: a new run) and derive what is shown.

    Args:
        document: The stored document, or ``None``.
        facts: Facts about this run, in any order, repeated or not.
        retention: How long a finished run is kept (sets ``expires_at``).

    Returns:
        The new document; ``document`` is not changed.
    """
    merged = _copy(document)
    for fact in facts:
        if not merged.get("tenant"):
            merged["_id"], merged["tenant"] = fact.run_id, fact.tenant
        if fact.tenant != merged["tenant"]:
            continue  # an event naming a run of another tenant proves nothing
        _merge(merged, fact)
    _derive(merged, retention)
    return merged


def _copy(document: Mapping[str, Any] | None) -> dict[str, Any]:
    if document is None:
        return {"tasks": [], "timeline": [], "run_events": {}, "task_order": []}
    copied = dict(document)
    copied["tasks"] = [
        {**task, "attempts": [dict(a) for a in task.get("attempts", [])]}
        for task in document.get("tasks", [])
    ]
    copied["timeline"] = list(document.get("timeline", []))
    copied["run_events"] = dict(document.get("run_events", {}))
    copied["task_order"] = list(document.get("task_order", []))
    return copied


def _merge(doc: dict[str, Any], fact: Fact) -> None:
    _earliest(doc, "first_event_at", fact.time)
    _latest(doc, "last_event_at", fact.time)
    if isinstance(fact, RunStarted):
        _merge_start(doc, fact)
        _timeline(doc, fact, "started")
    elif isinstance(fact, RunEnded):
        _merge_end(doc, fact)
        _timeline(doc, fact, fact.status.value)
    elif isinstance(fact, RunControlled):
        clock = _CONTROL_CLOCKS.get(fact.action)
        if clock is not None:
            _latest(doc["run_events"], clock, fact.time)
            _timeline(doc, fact, fact.action)
    elif isinstance(fact, AttemptScheduled):
        task = _task(doc, fact.task_id)
        task["type"] = task.get("type") or fact.task_type
        _earliest(_attempt(task, fact.attempt), "scheduled_at", fact.time)
        _timeline(doc, fact, "task.scheduled", fact.task_id, fact.attempt)
    elif isinstance(fact, AttemptStarted):
        attempt = _attempt(_task(doc, fact.task_id), fact.attempt)
        _earliest(attempt, "started_at", fact.time)
        _worker(attempt, fact.worker_id)
        _timeline(doc, fact, "task.started", fact.task_id, fact.attempt)
    elif isinstance(fact, AttemptHeartbeat):
        attempt = _attempt(_task(doc, fact.task_id), fact.attempt)
        _latest(attempt, "last_heartbeat_at", fact.time)
        _worker(attempt, fact.worker_id)
    elif isinstance(fact, AttemptFinished):
        _merge_finish(doc, fact)
    elif isinstance(fact, TaskDeadLettered):
        task = _task(doc, fact.task_id)
        dead = task.get("dead_lettered")
        if dead is None or (fact.attempts, fact.time) > (dead["attempts"], dead["time"]):
            task["dead_lettered"] = {
                "attempts": fact.attempts,
                "time": fact.time,
                "error": dict(fact.error) if fact.error else None,
            }
        _timeline(doc, fact, "task.dead_lettered", fact.task_id, fact.attempts)


def _merge_start(doc: dict[str, Any], fact: RunStarted) -> None:
    _earliest(doc["run_events"], "started", fact.time)
    doc["workflow"], doc["version"] = fact.workflow, fact.version
    doc["labels"] = dict(fact.labels)
    size = len(fact.input_json.encode())
    doc["input_bytes"] = size
    doc["input_truncated"] = size > MAX_INPUT_BYTES
    doc["input_json"] = fact.input_json if size <= MAX_INPUT_BYTES else None
    doc["task_order"] = list(fact.task_types)
    for task_id, task_type in fact.task_types.items():
        _task(doc, task_id)["type"] = task_type


def _merge_end(doc: dict[str, Any], fact: RunEnded) -> None:
    clock = _ENDED_CLOCKS[fact.status]
    if fact.workflow and not doc.get("workflow"):
        doc["workflow"], doc["version"] = fact.workflow, fact.version
    if fact.status is RunStatus.FAILED:
        # The latest report says why (ties broken by event id: any order agrees).
        previous = doc.get("failure_report")
        if previous is None or [fact.time, fact.event_id] > previous:
            doc["failure_report"] = [fact.time, fact.event_id]
            doc["failed_task_id"] = fact.failed_task_id or None
            doc["error"] = dict(fact.error) if fact.error else None
    _latest(doc["run_events"], clock, fact.time)


def _merge_finish(doc: dict[str, Any], fact: AttemptFinished) -> None:
    attempt = _attempt(_task(doc, fact.task_id), fact.attempt)
    outcome = "failed" if fact.error is not None else "succeeded"
    if fact.started_at is not None:
        _earliest(attempt, "started_at", fact.started_at)
    if fact.scheduled_at is not None:
        _earliest(attempt, "scheduled_at", fact.scheduled_at)
    _worker(attempt, fact.worker_id)
    # One outcome per attempt; a lost attempt re-run as the same one may report twice:
    # success wins, then the earlier report, then the smaller event id, so any order
    # gives the same answer.
    candidate = [outcome != "succeeded", fact.time, fact.event_id]
    if attempt.get("report") is None or candidate < attempt["report"]:
        attempt["report"] = candidate
        attempt["outcome"] = outcome
        attempt["finished_at"] = fact.time
        attempt["error"] = dict(fact.error) if fact.error else None
        attempt["output_bytes"] = fact.output_bytes if fact.error is None else None
    event = "task.completed" if fact.error is None else "task.failed"
    _timeline(doc, fact, event, fact.task_id, fact.attempt)


def _task(doc: dict[str, Any], task_id: str) -> dict[str, Any]:
    for task in doc["tasks"]:
        if task["id"] == task_id:
            return task  # type: ignore[no-any-return]
    task = {"id": task_id, "type": None, "attempts": [], "dead_lettered": None}
    doc["tasks"].append(task)
    return task


def _attempt(task: dict[str, Any], number: int) -> dict[str, Any]:
    for attempt in task["attempts"]:
        if attempt["attempt"] == number:
            return attempt  # type: ignore[no-any-return]
    attempt = {"attempt": number}
    task["attempts"].append(attempt)
    return attempt


def _worker(attempt: dict[str, Any], worker_id: str) -> None:
    # The smallest id seen, so two reports of one attempt agree whatever their order.
    if worker_id and (not attempt.get("worker_id") or worker_id < attempt["worker_id"]):
        attempt["worker_id"] = worker_id


def _earliest(target: dict[str, Any], key: str, time: datetime) -> None:
    if target.get(key) is None or time < target[key]:
        target[key] = time


def _latest(target: dict[str, Any], key: str, time: datetime) -> None:
    if target.get(key) is None or time > target[key]:
        target[key] = time


def _timeline(
    doc: dict[str, Any],
    fact: Fact,
    event: str,
    task_id: str | None = None,
    attempt: int | None = None,
) -> None:
    if any(entry["id"] == fact.event_id for entry in doc["timeline"]):
        return
    entry = {"time": fact.time, "event": event, "task_id": task_id, "attempt": attempt}
    doc["timeline"].append({**entry, "id": fact.event_id})
    doc["timeline"].sort(key=lambda e: (e["time"], e["id"]))
    del doc["timeline"][:-MAX_TIMELINE]


def _derive(doc: dict[str, Any], retention: timedelta) -> None:
    """Compute every shown field from the merged ones."""
    status, finished_at = _run_status(doc)
    doc["status"] = status.value
    doc["finished_at"] = finished_at
    order = {task_id: index for index, task_id in enumerate(doc["task_order"])}
    doc["tasks"].sort(key=lambda t: (order.get(t["id"], len(order)), t["id"]))
    for task in doc["tasks"]:
        task["attempts"].sort(key=lambda a: a["attempt"])
        for attempt in task["attempts"]:
            _derive_attempt(attempt)
        task["status"] = _task_status(task, status).value
    scheduled = [
        a["scheduled_at"] for t in doc["tasks"] for a in t["attempts"] if "scheduled_at" in a
    ]
    starts = [a["started_at"] for t in doc["tasks"] for a in t["attempts"] if a.get("started_at")]
    doc["created_at"] = doc["run_events"].get("started") or doc.get("first_event_at")
    doc["started_at"] = min(scheduled + starts, default=None)
    doc["duration_ms"] = _ms(finished_at - doc["created_at"]) if finished_at else None
    doc["expires_at"] = finished_at + retention if finished_at else None
    _derive_search_keys(doc)


def _run_status(doc: Mapping[str, Any]) -> tuple[RunStatus, datetime | None]:
    """The run's status and end time, from the latest time each run event was seen."""
    clocks: Mapping[str, datetime] = doc["run_events"]
    for final in (RunStatus.SUCCEEDED, RunStatus.CANCELLED):
        if final_time := clocks.get(_ENDED_CLOCKS[final]):
            return final, final_time
    failed, retry = clocks.get("failed"), clocks.get("retry")
    if failed is not None and (retry is None or retry < failed):
        return RunStatus.FAILED, failed
    since = retry or failed
    pause, resume = clocks.get("pause"), clocks.get("resume")
    if (
        pause is not None
        and (since is None or pause > since)
        and (resume is None or pause > resume)
    ):
        return RunStatus.PAUSED, None
    has_tasks = any(task["attempts"] for task in doc["tasks"])
    return (RunStatus.RUNNING if has_tasks or since else RunStatus.PENDING), None


def _derive_attempt(attempt: dict[str, Any]) -> None:
    scheduled, started, finished = (
        attempt.get("scheduled_at"),
        attempt.get("started_at"),
        attempt.get("finished_at"),
    )
    attempt["queue_wait_ms"] = _ms(started - scheduled) if started and scheduled else None
    attempt["duration_ms"] = _ms(finished - started) if finished and started else None


def _task_status(task: Mapping[str, Any], run: RunStatus) -> TaskStatus:
    attempts = task["attempts"]
    dead = task.get("dead_lettered")
    last = attempts[-1] if attempts else None
    if dead is not None and (last is None or dead["attempts"] >= last["attempt"]):
        return TaskStatus.DEAD_LETTERED
    if last is None:
        return {
            RunStatus.SUCCEEDED: TaskStatus.SKIPPED,
            RunStatus.CANCELLED: TaskStatus.CANCELLED,
        }.get(run, TaskStatus.PENDING)
    if last.get("outcome") == "succeeded":
        return TaskStatus.SUCCEEDED
    if run is RunStatus.CANCELLED:
        return TaskStatus.CANCELLED
    if last.get("outcome") == "failed":
        retryable = bool((last.get("error") or {}).get("retryable"))
        return TaskStatus.RETRYING if retryable and run not in ENDED_RUN else TaskStatus.FAILED
    return TaskStatus.RUNNING if last.get("started_at") else TaskStatus.SCHEDULED


def _derive_search_keys(doc: dict[str, Any]) -> None:
    labels: Mapping[str, str] = doc.get("labels") or {}
    errors = [a["error"] for t in doc["tasks"] for a in t["attempts"] if a.get("error")]
    errors += [
        t["dead_lettered"]["error"]
        for t in doc["tasks"]
        if (t.get("dead_lettered") or {}).get("error")
    ]
    if doc.get("error"):
        errors.append(doc["error"])
    words: dict[str, None] = {}
    texts = [doc.get("workflow") or "", *(f"{k} {v}" for k, v in labels.items())]
    texts += [task["id"] for task in doc["tasks"]]
    texts += [error.get("type") or "" for error in errors]
    for text in texts:
        words.update(dict.fromkeys(keywords_of(text)))
    for error in errors:
        words.update(dict.fromkeys(keywords_of(error.get("message") or "")[:MAX_MESSAGE_KEYWORDS]))
    workflow = doc.get("workflow") or ""
    keys = [SearchKey.word(word) for word in sorted(words)[:MAX_KEYWORDS]]
    keys += [SearchKey.label(f"{k}={v}") for k, v in sorted(labels.items())]
    keys += [
        SearchKey.task_type(t) for t in sorted({t["type"] for t in doc["tasks"] if t.get("type")})
    ]
    keys += [SearchKey.error_type(e) for e in sorted({e["type"] for e in errors if e.get("type")})]
    keys += [SearchKey.workflow(workflow), SearchKey.status_workflow(doc["status"], workflow)]
    doc["search_keys"] = keys


def _ms(delta: timedelta) -> int:
    return max(0, round(delta.total_seconds() * 1000))
