"""The scheduler: dead letters and pending delay timers."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

from interlock.client._calls import Call, PagedCall, get_pages, model, nothing, page_of
from interlock.client._models import ApiModel
from interlock.client._operations import Mode, Resource, operation, paged
from interlock.client._workflows import DEFAULT_PAGE_SIZE


class DeadLetter(ApiModel):
    """A task that used up its retries, parked for a person to look at."""

    id: str
    run_id: str
    task_id: str
    task_type: str
    input: Any = None
    """The params of the last attempt."""
    attempts: int
    error_type: str
    error_message: str
    traceback_excerpt: str = ""
    created_at: datetime


class Replay(ApiModel):
    """The attempt a replay scheduled."""

    run_id: str
    task_id: str
    attempt: int


class Timer(ApiModel):
    """A pending delay of a task."""

    run_id: str
    task_id: str
    due_at: datetime


class DeadLetters(Resource[Mode]):
    """Dead letters of the caller's tenant (``/api/v1/dead-letters``)."""

    @operation
    def replay(self, dead_letter_id: str) -> Call[Replay]:
        """Run the task again with a fresh retry budget and resume its run."""
        return Call(
            method="POST",
            path=f"/api/v1/dead-letters/{quote(dead_letter_id, safe='')}/replay",
            parse=model(Replay),
        )

    @operation
    def discard(self, dead_letter_id: str) -> Call[None]:
        """Discard a dead letter (the task stays dead-lettered in its run)."""
        return Call(
            method="DELETE",
            path=f"/api/v1/dead-letters/{quote(dead_letter_id, safe='')}",
            parse=nothing,
        )

    @paged
    def list(
        self,
        *,
        run_id: str | None = None,
        task_id: str | None = None,
        task_type: str | None = None,
        error_type: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> PagedCall[DeadLetter]:
        """Dead letters, newest first, every page; each filter defaults to all."""
        params = {
            "run_id": run_id,
            "task_id": task_id,
            "task_type": task_type,
            "error_type": error_type,
            "page_size": page_size,
        }
        return get_pages("/api/v1/dead-letters", page_of(DeadLetter, "items"), params)


class Timers(Resource[Mode]):
    """Pending delays of tasks (``/api/v1/runs/{run}/tasks/{task}/timer``)."""

    @operation
    def move(self, run_id: str, task_id: str, due_at: datetime) -> Call[Timer]:
        """Make a pending delay fire at ``due_at`` (in the past: at once); it must be aware."""
        return Call(
            method="PATCH",
            path=_timer_path(run_id, task_id),
            json={"due_at": due_at.isoformat()},
            parse=model(Timer),
        )

    @operation
    def cancel(self, run_id: str, task_id: str) -> Call[None]:
        """Cancel a pending delay: the task is skipped and the run goes on."""
        return Call(method="DELETE", path=_timer_path(run_id, task_id), parse=nothing)


def _timer_path(run_id: str, task_id: str) -> str:
    return f"/api/v1/runs/{quote(run_id, safe='')}/tasks/{quote(task_id, safe='')}/timer"
