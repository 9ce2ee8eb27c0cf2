"""REST routes of the metadata service's executions (behind the gateway, which sets the caller).

``GET /api/v1/executions`` (search), ``/executions/summary`` (per-workflow overview) and
``/executions/{run_id}`` (one document). Every route is tenant-scoped by
:data:`CurrentPrincipal`: another tenant's run answers 404. Times are RFC 3339 UTC with
milliseconds.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from interlock.common.durations import parse_duration_ms
from interlock.common.errors import InvalidDurationError
from interlock.common.identity import CurrentPrincipal
from interlock.common.mongo import MongoDocument
from interlock.common.paging import DEFAULT_PAGE_SIZE, PageSize, PageToken
from interlock.common.problems import GATEWAY_PROBLEMS, problem_responses
from interlock.common.statuses import RunStatus
from interlock.metadata.domain import OrderBy, Search, Summary
from interlock.metadata.domain.search import MAX_QUERY_WORDS
from interlock.metadata.errors import InvalidSearchError
from interlock.metadata.service import ExecutionService

__all__ = ["build_router"]

Text = Annotated[str | None, Query(min_length=1, max_length=200)]

MAX_FILTER_VALUES = 20
"""Repeated ``status`` or ``label`` values accepted."""
MAX_SUMMARY_WINDOW = timedelta(days=31)
"""Longest summary window."""


class ErrorView(BaseModel):
    type: str
    message: str
    retryable: bool


class AttemptView(BaseModel):
    attempt: int
    worker_id: str | None = None
    scheduled_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    duration_ms: int | None = None
    queue_wait_ms: int | None = None
    """Time between scheduled and started: waiting for a worker."""
    last_heartbeat_at: str | None = None
    outcome: str | None = None
    """``succeeded``, ``failed``, or null while it runs."""
    error: ErrorView | None = None
    output_bytes: int | None = None


class DeadLetterView(BaseModel):
    attempts: int
    time: str
    error: ErrorView | None = None


class TaskView(BaseModel):
    id: str
    type: str | None = None
    status: str
    attempts: list[AttemptView]
    dead_lettered: DeadLetterView | None = None


class TimelineEntry(BaseModel):
    time: str
    event: str
    task_id: str | None = None
    attempt: int | None = None


class ExecutionSummaryView(BaseModel):
    run_id: str
    workflow: str | None = None
    version: int | None = None
    labels: dict[str, str] = {}
    status: str
    created_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    duration_ms: int | None = None
    failed_task_id: str | None = None
    error: ErrorView | None = None


class ExecutionDetail(ExecutionSummaryView):
    input: Any = None
    input_bytes: int | None = None
    input_truncated: bool = False
    """The input was larger than the document keeps (64 KiB) and is left out."""
    tasks: list[TaskView]
    timeline: list[TimelineEntry]
    """The latest 200 transitions, oldest first."""


class ExecutionList(BaseModel):
    executions: list[ExecutionSummaryView]
    next_page_token: str | None


class WorkflowSummaryView(BaseModel):
    workflow: str
    runs: int
    by_status: dict[str, int]
    success_rate: float | None
    duration_ms_p50: int | None
    duration_ms_p95: int | None
    duration_ms_p99: int | None


class SummaryView(BaseModel):
    since: str
    until: str
    workflows: list[WorkflowSummaryView]


def build_router(service: ExecutionService) -> APIRouter:
    """The executions routes, calling ``service``."""
    router = APIRouter(prefix="/api/v1", tags=["executions"])

    @router.get("/executions", response_model=ExecutionList, responses=_problems(400, 422))
    async def search_executions(
        principal: CurrentPrincipal,
        workflow: Text = None,
        status: Annotated[list[RunStatus], Query(description="Repeat for any of.")] = [],  # noqa: B006
        label: Annotated[list[str], Query(description="key=value; repeat for all of.")] = [],  # noqa: B006
        task_type: Text = None,
        error_type: Text = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        finished_after: datetime | None = None,
        finished_before: datetime | None = None,
        q: Annotated[
            str | None,
            Query(
                max_length=200,
                description="Words that must all appear in the workflow name, labels, "
                "task ids, error types or error messages.",
            ),
        ] = None,
        order_by: OrderBy = OrderBy.CREATED_AT_DESC,
        page_size: PageSize = DEFAULT_PAGE_SIZE,
        page_token: PageToken = None,
    ) -> JSONResponse:
        """Runs matching every filter given, newest first unless ``order_by`` says otherwise."""
        search = Search(
            tenant=principal.tenant,
            workflow=workflow,
            statuses=tuple(dict.fromkeys(_bounded("status", status))),
            labels=tuple(_label(value) for value in _bounded("label", label)),
            task_type=task_type,
            error_type=error_type,
            created_after=_utc(created_after),
            created_before=_utc(created_before),
            finished_after=_utc(finished_after),
            finished_before=_utc(finished_before),
            q=q,
            order_by=order_by,
        )
        if len(search.words) > MAX_QUERY_WORDS:
            raise InvalidSearchError(f"q holds more than {MAX_QUERY_WORDS} words")
        page = await service.search(search, page_size=page_size, page_token=page_token)
        return JSONResponse(
            {
                "executions": [summary_view(doc) for doc in page.items],
                "next_page_token": page.next_page_token,
            }
        )

    # Before /executions/{run_id}, which would take "summary" for a run id.
    @router.get("/executions/summary", response_model=SummaryView, responses=_problems(400, 422))
    async def summarize_executions(
        principal: CurrentPrincipal,
        window: Annotated[
            str,
            Query(max_length=32, description="How far back from now, e.g. 1h, 7d (at most 31d)."),
        ] = "1d",
        workflow: Text = None,
    ) -> JSONResponse:
        """Per workflow, the runs created within the window.

        Counts by status, success rate among finished runs, duration percentiles.
        """
        summary = await service.summary(principal.tenant, window=_window(window), workflow=workflow)
        return JSONResponse(summary_document(summary))

    @router.get("/executions/{run_id}", response_model=ExecutionDetail, responses=_problems(404))
    async def get_execution(principal: CurrentPrincipal, run_id: str) -> JSONResponse:
        """One run: its tasks, every attempt and the latest transitions."""
        return JSONResponse(detail_view(await service.get(principal.tenant, run_id)))

    return router


def _problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    # Every route is behind the gateway's authorization.
    return problem_responses(*GATEWAY_PROBLEMS, *statuses)


def rfc3339(time: datetime | None) -> str | None:
    """``time`` as RFC 3339 UTC with milliseconds, e.g. ``2026-01-01T09:00:00.000Z``."""
    if time is None:
        return None
    return time.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def summary_view(doc: MongoDocument) -> dict[str, Any]:
    """A document as a search result."""
    return {
        "run_id": doc["_id"],
        "workflow": doc.get("workflow"),
        "version": doc.get("version"),
        "labels": doc.get("labels") or {},
        "status": doc["status"],
        "created_at": rfc3339(doc.get("created_at")),
        "started_at": rfc3339(doc.get("started_at")),
        "finished_at": rfc3339(doc.get("finished_at")),
        "duration_ms": doc.get("duration_ms"),
        "failed_task_id": doc.get("failed_task_id"),
        "error": doc.get("error"),
    }


def detail_view(doc: MongoDocument) -> dict[str, Any]:
    """A document with its tasks, attempts and timeline."""
    input_json = doc.get("input_json")
    return {
        **summary_view(doc),
        "input": json.loads(input_json) if input_json else None,
        "input_bytes": doc.get("input_bytes"),
        "input_truncated": bool(doc.get("input_truncated")),
        "tasks": [_task_view(task) for task in doc.get("tasks", [])],
        "timeline": [
            {
                "time": rfc3339(entry["time"]),
                "event": entry["event"],
                "task_id": entry.get("task_id"),
                "attempt": entry.get("attempt"),
            }
            for entry in doc.get("timeline", [])
        ],
    }


def _task_view(task: MongoDocument) -> dict[str, Any]:
    dead = task.get("dead_lettered")
    return {
        "id": task["id"],
        "type": task.get("type"),
        "status": task["status"],
        "attempts": [
            {
                "attempt": attempt["attempt"],
                "worker_id": attempt.get("worker_id"),
                "scheduled_at": rfc3339(attempt.get("scheduled_at")),
                "started_at": rfc3339(attempt.get("started_at")),
                "finished_at": rfc3339(attempt.get("finished_at")),
                "duration_ms": attempt.get("duration_ms"),
                "queue_wait_ms": attempt.get("queue_wait_ms"),
                "last_heartbeat_at": rfc3339(attempt.get("last_heartbeat_at")),
                "outcome": attempt.get("outcome"),
                "error": attempt.get("error"),
                "output_bytes": attempt.get("output_bytes"),
            }
            for attempt in task.get("attempts", [])
        ],
        "dead_lettered": (
            {
                "attempts": dead["attempts"],
                "time": rfc3339(dead["time"]),
                "error": dead.get("error"),
            }
            if dead
            else None
        ),
    }


def summary_document(summary: Summary) -> dict[str, Any]:
    """The summary as its JSON document."""
    return {
        "since": rfc3339(summary.since),
        "until": rfc3339(summary.until),
        "workflows": [
            {
                "workflow": w.workflow,
                "runs": w.runs,
                "by_status": dict(w.by_status),
                "success_rate": w.success_rate,
                "duration_ms_p50": w.duration_ms_p50,
                "duration_ms_p95": w.duration_ms_p95,
                "duration_ms_p99": w.duration_ms_p99,
            }
            for w in summary.workflows
        ],
    }


def _bounded(name: str, values: list[Any]) -> list[Any]:
    if len(values) > MAX_FILTER_VALUES:
        raise InvalidSearchError(f"at most {MAX_FILTER_VALUES} {name} values")
    return values


def _label(value: str) -> str:
    key, equals, _ = value.partition("=")
    if not equals or not key:
        raise InvalidSearchError(f"label filter {value!r} is not key=value")
    return value


def _window(text: str) -> timedelta:
    try:
        window = timedelta(milliseconds=parse_duration_ms(text))
    except InvalidDurationError as error:
        raise InvalidSearchError(f"window: {error}") from error
    if window > MAX_SUMMARY_WINDOW or window <= timedelta(0):
        raise InvalidSearchError("window must be positive and at most 31d")
    return window


def _utc(time: datetime | None) -> datetime | None:
    """``time`` in UTC (naive means UTC), or a 422 when UTC cannot hold it."""
    if time is None:
        return None
    try:
        return (time if time.tzinfo is not None else time.replace(tzinfo=UTC)).astimezone(UTC)
    except OverflowError as error:
        raise InvalidSearchError(f"{time.isoformat()} is out of range in UTC") from error
