"""REST routes of task logs: a page of a run's log, and its live stream (SSE).

``GET /api/v1/executions/{run_id}/logs`` and ``GET /api/v1/executions/{run_id}/logs/stream``,
tenant-scoped by :data:`CurrentPrincipal` (another tenant's run answers 404).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from interlock.common.identity import CurrentPrincipal
from interlock.common.problems import GATEWAY_PROBLEMS, problem_responses
from interlock.metadata.logs.domain import Cursor, LineFilter, ReadLine, parse_cursor
from interlock.metadata.logs.errors import InvalidCursorError
from interlock.metadata.logs.service import END, HEARTBEAT, LogQuery, LogService

__all__ = ["build_router"]

MAX_LINES = 10_000
"""Most lines one page returns (``limit``, ``tail``)."""
DEFAULT_LINES = 1000

_STREAM_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Server-Sent Events: one event per line (its `id` the line's cursor, "
        "its data a `LogLineView`), a comment heartbeat when quiet, and an `end` event "
        "once the run ended and every line was sent.",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}


class Level(StrEnum):
    """A log level; as a filter, the least severe one wanted."""

    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class LogLineView(BaseModel):
    """One line of a task's log."""

    time: str = Field(description="When the task wrote it (RFC 3339 UTC).")
    level: str = Field(description="`DEBUG`, `INFO`, `WARNING` or `ERROR`.")
    task_id: str
    attempt: int
    seq: int = Field(description="Its position in the attempt's log, from 1.")
    message: str
    cursor: str = Field(description="Pass as `after` to read the lines after this one.")


class LogPageView(BaseModel):
    """Lines of a run's log, oldest first."""

    lines: list[LogLineView]
    next_cursor: str | None = Field(
        description="Pass as `after` to read on (null while the log has no line)."
    )
    end_of_log: bool = Field(
        description="The run has ended and every line (matching the filters) was returned."
    )


RunId = Annotated[str, Path(min_length=1, max_length=200)]
TaskId = Annotated[str | None, Query(min_length=1, max_length=200, description="Only this task.")]
AttemptNumber = Annotated[int | None, Query(ge=1, le=2**31 - 1, description="Only this attempt.")]
LevelFilter = Annotated[Level | None, Query(description="Least severe level wanted.")]
Contains = Annotated[
    str | None,
    Query(min_length=1, max_length=200, description="Text the message contains (any case)."),
]
After = Annotated[str | None, Query(max_length=40, description="A cursor: lines after it only.")]
Tail = Annotated[int | None, Query(ge=1, le=MAX_LINES, description="Only the last N lines.")]


def build_router(service: LogService) -> APIRouter:
    """The log routes, calling ``service``."""
    router = APIRouter(prefix="/api/v1")

    @router.get(
        "/executions/{run_id}/logs",
        tags=["logs"],
        response_model=LogPageView,
        responses=problem_responses(*GATEWAY_PROBLEMS, 404, 422),
    )
    async def read_logs(
        principal: CurrentPrincipal,
        run_id: RunId,
        task_id: TaskId = None,
        attempt: AttemptNumber = None,
        level: LevelFilter = None,
        contains: Contains = None,
        after: After = None,
        tail: Tail = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LINES, description="Default: 1000.")] = (
            DEFAULT_LINES
        ),
    ) -> LogPageView:
        """A page of the run's task logs: from the start, after a cursor, or the tail."""
        page = await service.read(
            principal.tenant,
            run_id,
            _query(task_id, attempt, level, contains, after, tail, limit),
        )
        return LogPageView(
            lines=[_line_view(line) for line in page.lines],
            next_cursor=str(page.next_cursor) if page.next_cursor else None,
            end_of_log=page.end_of_log,
        )

    @router.get(
        "/executions/{run_id}/logs/stream",
        tags=["logs"],
        response_class=StreamingResponse,
        responses={**_STREAM_RESPONSE, **problem_responses(*GATEWAY_PROBLEMS, 404, 422)},
    )
    async def stream_logs(
        principal: CurrentPrincipal,
        run_id: RunId,
        task_id: TaskId = None,
        attempt: AttemptNumber = None,
        level: LevelFilter = None,
        contains: Contains = None,
        after: After = None,
        tail: Tail = None,
        last_event_id: Annotated[
            str | None,
            Header(max_length=40, description="Resume after this cursor (wins over `after`)."),
        ] = None,
    ) -> StreamingResponse:
        """Follow the run's task logs as Server-Sent Events, until the run ends."""
        query = _query(task_id, attempt, level, contains, last_event_id or after, tail, MAX_LINES)
        if last_event_id:  # a resumed stream goes on where it was, not at a new tail
            query = LogQuery(
                task_id=query.task_id,
                attempt=query.attempt,
                wanted=query.wanted,
                after=query.after,
                limit=query.limit,
            )
        events = await service.follow(principal.tenant, run_id, query)
        return StreamingResponse(
            _sse(events),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    return router


async def _sse(events: AsyncIterator[list[ReadLine] | str]) -> AsyncIterator[str]:
    yield ": stream open\n\n"
    async for event in events:
        if event == HEARTBEAT:
            yield ": heartbeat\n\n"
        elif event == END:
            yield "event: end\ndata: {}\n\n"
        elif isinstance(event, list):
            yield "".join(
                f"id: {line.cursor}\ndata: {json.dumps(_line_view(line).model_dump())}\n\n"
                for line in event
            )


def _query(
    task_id: str | None,
    attempt: int | None,
    level: Level | None,
    contains: str | None,
    after: str | None,
    tail: int | None,
    limit: int,
) -> LogQuery:
    return LogQuery(
        task_id=task_id,
        attempt=attempt,
        wanted=LineFilter(level=level.value.upper() if level else None, contains=contains),
        after=_cursor(after),
        tail=tail,
        limit=limit,
    )


def _cursor(text: str | None) -> Cursor | None:
    if not text:
        return None
    try:
        return parse_cursor(text)
    except ValueError as error:
        raise InvalidCursorError(str(error)) from None


def _line_view(read: ReadLine) -> LogLineView:
    return LogLineView(
        time=_rfc3339(read.line.time),
        level=read.line.level,
        task_id=read.task_id,
        attempt=read.attempt,
        seq=read.line.seq,
        message=read.line.message,
        cursor=str(read.cursor),
    )


def _rfc3339(time: datetime) -> str:
    return time.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"
