"""REST routes: dead letters and pending delay timers, scoped to the caller's tenant."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Response
from pydantic import AfterValidator, AwareDatetime, BaseModel, Field

from interlock.common.identity import CurrentPrincipal
from interlock.common.paging import DEFAULT_PAGE_SIZE, PageSize, PageToken
from interlock.common.problems import GATEWAY_PROBLEMS, problem_responses
from interlock.scheduler import store
from interlock.scheduler.service import SchedulerService


def _problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The problem+json answers of a route: its own ``statuses`` and the gateway's."""
    return problem_responses(*GATEWAY_PROBLEMS, *statuses)


class DeadLetterOut(BaseModel):
    """A parked task."""

    id: str
    run_id: str
    task_id: str
    task_type: str
    input: Any = Field(description="The params of the last attempt.")
    attempts: int
    error_type: str
    error_message: str
    traceback_excerpt: str
    created_at: datetime


class DeadLetterPage(BaseModel):
    """One page of dead letters, newest first."""

    items: list[DeadLetterOut]
    next_page_token: str | None = Field(description="Pass as `page_token` for the next page.")


class ReplayOut(BaseModel):
    """The attempt a replay scheduled, or queued until a limited run gets a slot again."""

    run_id: str
    task_id: str
    attempt: int


def _in_utc(time: datetime) -> datetime:
    try:
        return time.astimezone(UTC)
    except OverflowError as error:  # 9999-12-31T23:59-23:59 is past year 9999 in UTC
        raise ValueError("the time is out of range in UTC") from error


class TimerChange(BaseModel):
    """When a pending delay should fire instead."""

    due_at: Annotated[AwareDatetime, AfterValidator(_in_utc)]


class TimerOut(BaseModel):
    """A pending delay."""

    run_id: str
    task_id: str
    due_at: datetime


def build_router(service: SchedulerService) -> APIRouter:
    """The scheduler's REST routes.

    Args:
        service: The scheduler's use cases.
    """
    router = APIRouter(prefix="/api/v1", tags=["scheduler"])

    @router.get("/dead-letters", response_model=DeadLetterPage, responses=_problems(400, 422))
    async def list_dead_letters(
        principal: CurrentPrincipal,
        run_id: str | None = None,
        task_id: str | None = None,
        task_type: str | None = None,
        error_type: str | None = None,
        page_size: PageSize = DEFAULT_PAGE_SIZE,
        page_token: PageToken = None,
    ) -> DeadLetterPage:
        """Dead letters of the caller's tenant, newest first, filtered and paginated."""
        where = store.DeadLetterFilter(
            run_id=run_id, task_id=task_id, task_type=task_type, error_type=error_type
        )
        page = await service.list_dead_letters(
            principal.tenant, where, page_size=page_size, page_token=page_token
        )
        return DeadLetterPage(
            items=[_dead_letter(row) for row in page.items],
            next_page_token=page.next_page_token,
        )

    @router.post(
        "/dead-letters/{dead_letter_id}/replay",
        status_code=202,
        response_model=ReplayOut,
        responses=_problems(404, 409),
    )
    async def replay_dead_letter(dead_letter_id: str, principal: CurrentPrincipal) -> ReplayOut:
        """Re-run the task with a fresh retry budget and resume its run; the letter goes."""
        replayed = await service.replay_dead_letter(principal.tenant, dead_letter_id)
        return ReplayOut(run_id=replayed.run_id, task_id=replayed.task_id, attempt=replayed.attempt)

    @router.delete("/dead-letters/{dead_letter_id}", status_code=204, responses=_problems(404))
    async def delete_dead_letter(dead_letter_id: str, principal: CurrentPrincipal) -> Response:
        """Discard a dead letter (the task stays dead-lettered in its run)."""
        await service.delete_dead_letter(principal.tenant, dead_letter_id)
        return Response(status_code=204)

    @router.patch(
        "/runs/{run_id}/tasks/{task_id}/timer",
        response_model=TimerOut,
        responses=_problems(404, 422),
    )
    async def change_timer(
        run_id: str, task_id: str, change: TimerChange, principal: CurrentPrincipal
    ) -> TimerOut:
        """Move a pending delay to another time (in the past: it fires at once)."""
        await service.reschedule_delay(principal.tenant, run_id, task_id, change.due_at)
        return TimerOut(run_id=run_id, task_id=task_id, due_at=change.due_at)

    @router.delete(
        "/runs/{run_id}/tasks/{task_id}/timer", status_code=204, responses=_problems(404)
    )
    async def cancel_timer(run_id: str, task_id: str, principal: CurrentPrincipal) -> Response:
        """Cancel a pending delay: the task is skipped and the run continues."""
        await service.cancel_delay(principal.tenant, run_id, task_id)
        return Response(status_code=204)

    return router


def _dead_letter(row: asyncpg.Record) -> DeadLetterOut:
    return DeadLetterOut(
        id=str(row["id"]),
        run_id=row["run_id"],
        task_id=row["task_id"],
        task_type=row["task_type"],
        input=store.json_or_none(row["params_json"]),
        attempts=row["attempts"],
        error_type=row["error_type"],
        error_message=row["error_message"],
        traceback_excerpt=row["error_traceback"],
        created_at=row["created_at"],
    )
