"""The metadata service: execution documents, search, task logs and their live stream.

Written to the routes of the metadata service's specification (executions, logs,
``logs/stream``, summary); fields the server adds are kept on the models.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import quote

from httpx_sse import ServerSentEvent

from interlock.client._calls import Call, EventStream, PagedCall, get_pages, model, page_of
from interlock.client._models import ApiModel
from interlock.client._operations import Mode, Resource, operation, paged, streamed
from interlock.client._workflows import DEFAULT_PAGE_SIZE

END_EVENT = "end"
"""The event that closes a log stream: the run ended and every line was sent."""


class Execution(ApiModel):
    """What happened in a run: statuses, times, and every task's attempts."""

    run_id: str
    workflow: str
    version: int | None = None
    status: str
    labels: dict[str, str] = {}
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_ms: float | None = None
    tasks: Any = None
    """Per task: status and every attempt (worker, times, outcome, error)."""


class LogLine(ApiModel):
    """One line a task wrote."""

    time: datetime
    level: str
    task_id: str
    attempt: int
    seq: int
    message: str


class LogPage(ApiModel):
    """Lines of a run's log and where to read on."""

    lines: list[LogLine]
    next_cursor: str | None = None
    end_of_log: bool = False
    """The run ended and every line has been returned."""


def _execution_path(run_id: str) -> str:
    return f"/api/v1/executions/{quote(run_id, safe='')}"


def _log_line(event: ServerSentEvent) -> LogLine | None:
    if event.event == END_EVENT or not event.data:
        return None
    return LogLine.model_validate(json.loads(event.data))


class Executions(Resource[Mode]):
    """Search and read execution documents (``/api/v1/executions``)."""

    @operation
    def get(self, run_id: str) -> Call[Execution]:
        """A run's execution document."""
        return Call(method="GET", path=_execution_path(run_id), parse=model(Execution))

    @operation
    def summary(
        self, *, created_after: datetime | None = None, created_before: datetime | None = None
    ) -> Call[dict[str, Any]]:
        """Per workflow over a window: runs by status, success rate, duration percentiles.

        Args:
            created_after: The window's start. Default: the server's.
            created_before: The window's end. Default: now.
        """
        params = {
            "created_after": created_after.isoformat() if created_after else None,
            "created_before": created_before.isoformat() if created_before else None,
        }
        return Call(
            method="GET", path="/api/v1/executions/summary", params=params, parse=lambda r: r.json()
        )

    @paged
    def search(
        self,
        *,
        workflow: str | None = None,
        statuses: list[str] | None = None,
        labels: dict[str, str] | None = None,
        task_type: str | None = None,
        error_type: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        q: str | None = None,
        order_by: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> PagedCall[Execution]:
        """Executions matching every filter given, every page.

        Args:
            workflow: Only this workflow's runs. Default: all.
            statuses: Any of these statuses. Default: all.
            labels: Every one of these labels. Default: all.
            task_type: Runs with a task of this type. Default: all.
            error_type: Runs with an error of this type. Default: all.
            created_after: Created after this time. Default: no bound.
            created_before: Created before this time. Default: no bound.
            q: Words that must all appear (workflow, labels, task ids, errors). Default: none.
            order_by: ``created_at desc`` or ``duration desc``. Default: the server's
                (``created_at desc``).
            page_size: Items per request. Default: 50.
        """
        params = {
            "workflow": workflow,
            "status": statuses,
            "label": [f"{k}={v}" for k, v in (labels or {}).items()],
            "task_type": task_type,
            "error_type": error_type,
            "created_after": created_after.isoformat() if created_after else None,
            "created_before": created_before.isoformat() if created_before else None,
            "q": q,
            "order_by": order_by,
            "page_size": page_size,
        }
        return get_pages("/api/v1/executions", page_of(Execution, "executions", "items"), params)


class Logs(Resource[Mode]):
    """Task logs of a run: pages of lines, or the live stream."""

    @operation
    def read(
        self,
        run_id: str,
        *,
        task_id: str | None = None,
        attempt: int | None = None,
        level: str | None = None,
        contains: str | None = None,
        after: str | None = None,
        tail: int | None = None,
        limit: int | None = None,
    ) -> Call[LogPage]:
        """One page of a run's log lines, in order.

        Args:
            run_id: The run.
            task_id: One task's lines. Default: every task's.
            attempt: One attempt's lines. Default: every attempt's.
            level: Lines at this level or above. Default: all.
            contains: Lines holding this text. Default: all.
            after: The ``next_cursor`` of the previous page. Default: from the start.
            tail: Only the last this many lines. Default: all.
            limit: At most this many lines. Default: the server's page size.
        """
        params = {
            "task_id": task_id,
            "attempt": attempt,
            "level": level,
            "contains": contains,
            "after": after,
            "tail": tail,
            "limit": limit,
        }
        return Call(
            method="GET",
            path=f"{_execution_path(run_id)}/logs",
            params=params,
            parse=model(LogPage),
        )

    @streamed
    def stream(
        self,
        run_id: str,
        *,
        task_id: str | None = None,
        attempt: int | None = None,
        after: str | None = None,
    ) -> EventStream[LogLine]:
        """Every log line of a run as it is written, until the run ended and all were sent.

        A broken connection is resumed from the last line received (``Last-Event-ID``),
        so no line is lost or repeated.

        Args:
            run_id: The run.
            task_id: One task's lines. Default: every task's.
            attempt: One attempt's lines. Default: every attempt's.
            after: Start after this cursor. Default: from the first line.
        """
        params = {"task_id": task_id, "attempt": attempt}

        def call(cursor: str | None) -> Call[None]:
            headers = {"accept": "text/event-stream"}
            if cursor:
                headers["last-event-id"] = cursor
            return Call(
                method="GET",
                path=f"{_execution_path(run_id)}/logs/stream",
                params=params,
                headers=headers,
                parse=lambda _: None,
            )

        return EventStream(
            call=call,
            parse=_log_line,
            is_end=lambda event: event.event == END_EVENT,
            after=after,
        )
