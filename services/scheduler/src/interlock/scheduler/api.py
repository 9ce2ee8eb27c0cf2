"""REST routes: dead letters and pending delay timers, scoped to the caller's tenant."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import datetime
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Query, Response
from pydantic import AwareDatetime, BaseModel, Field

from interlock.common.identity import CurrentPrincipal
from interlock.common.postgres import PostgresDatabase
from interlock.common.problems import Problem
from interlock.scheduler import store
from interlock.scheduler.domain.clock import Clock, utc_now
from interlock.scheduler.domain.run import RunState
from interlock.scheduler.errors import conflict, not_found

MAX_PAGE = 200
"""Largest page of dead letters."""


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
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


class ReplayOut(BaseModel):
    """The attempt a replay scheduled."""

    run_id: str
    task_id: str
    attempt: int


class TimerChange(BaseModel):
    """When a pending delay should fire instead."""

    due_at: AwareDatetime


class TimerOut(BaseModel):
    """A pending delay."""

    run_id: str
    task_id: str
    due_at: datetime


def _encode_cursor(created_at: datetime, letter_id: uuid.UUID) -> str:
    raw = json.dumps([created_at.isoformat(), str(letter_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        created_at, letter_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return datetime.fromisoformat(created_at), uuid.UUID(letter_id)
    except (ValueError, TypeError, binascii.Error) as error:
        raise Problem(
            400, "Invalid cursor", detail="The cursor is not one this API returned."
        ) from error


def _letter_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError as error:
        raise not_found("Dead letter") from error


async def _tenant_run(conn: asyncpg.Connection, tenant: str, run_id: str) -> RunState:
    run = (await store.load_runs(conn, [run_id])).get(run_id)
    if run is None or run.tenant != tenant:
        raise not_found("Run")
    return run


def build_router(
    database: PostgresDatabase,
    *,
    clock: Clock = utc_now,
    on_timer: Any = None,
) -> APIRouter:
    """The scheduler's REST routes.

    Args:
        database: The scheduler's database (opened before the first request).
        clock: Source of the current time. Default: UTC now.
        on_timer: Called with a changed timer's due time after commit (wakes the
            timer loop). Default: nothing.
    """
    router = APIRouter(prefix="/api/v1", tags=["scheduler"])

    @router.get("/dead-letters")
    async def list_dead_letters(
        principal: CurrentPrincipal,
        run_id: str | None = None,
        task_id: str | None = None,
        task_type: str | None = None,
        error_type: str | None = None,
        cursor: str | None = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    ) -> DeadLetterPage:
        """Dead letters of the caller's tenant, newest first, filtered and paginated."""
        after = _decode_cursor(cursor) if cursor else None
        rows = await database.pool.fetch(
            """
            SELECT * FROM dead_letters
            WHERE tenant = $1
              AND ($2::text IS NULL OR run_id = $2)
              AND ($3::text IS NULL OR task_id = $3)
              AND ($4::text IS NULL OR task_type = $4)
              AND ($5::text IS NULL OR error_type = $5)
              AND ($6::timestamptz IS NULL OR (created_at, id) < ($6, $7::uuid))
            ORDER BY created_at DESC, id DESC
            LIMIT $8
            """,
            principal.tenant,
            run_id,
            task_id,
            task_type,
            error_type,
            after[0] if after else None,
            after[1] if after else None,
            limit + 1,
        )
        items = [
            DeadLetterOut(
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
            for row in rows[:limit]
        ]
        next_cursor = None
        if len(rows) > limit:
            last = rows[limit - 1]
            next_cursor = _encode_cursor(last["created_at"], last["id"])
        return DeadLetterPage(items=items, next_cursor=next_cursor)

    @router.post("/dead-letters/{dead_letter_id}/replay", status_code=202)
    async def replay_dead_letter(dead_letter_id: str, principal: CurrentPrincipal) -> ReplayOut:
        """Re-run the task with a fresh retry budget and resume its run; the letter goes."""
        key = _letter_id(dead_letter_id)
        async with database.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT run_id, task_id FROM dead_letters WHERE id = $1 AND tenant = $2",
                key,
                principal.tenant,
            )
            if row is None:
                raise not_found("Dead letter")
            run = await _tenant_run(conn, principal.tenant, row["run_id"])
            now = clock()
            if not run.replay(row["task_id"], now):
                raise conflict("The task is no longer dead-lettered, or its run cannot resume.")
            attempt = run.tasks[row["task_id"]].attempt
            result = await store.save_runs(conn, [run], now)
            await conn.execute("DELETE FROM dead_letters WHERE id = $1", key)
        if result.earliest_timer is not None and on_timer is not None:
            on_timer(result.earliest_timer)
        return ReplayOut(run_id=row["run_id"], task_id=row["task_id"], attempt=attempt)

    @router.delete("/dead-letters/{dead_letter_id}", status_code=204)
    async def delete_dead_letter(dead_letter_id: str, principal: CurrentPrincipal) -> Response:
        """Discard a dead letter (the task stays dead-lettered in its run)."""
        deleted = await database.pool.fetchval(
            "DELETE FROM dead_letters WHERE id = $1 AND tenant = $2 RETURNING 1",
            _letter_id(dead_letter_id),
            principal.tenant,
        )
        if deleted is None:
            raise not_found("Dead letter")
        return Response(status_code=204)

    @router.patch("/runs/{run_id}/tasks/{task_id}/timer")
    async def change_timer(
        run_id: str, task_id: str, change: TimerChange, principal: CurrentPrincipal
    ) -> TimerOut:
        """Move a pending delay to another time (in the past: it fires at once)."""
        async with database.pool.acquire() as conn, conn.transaction():
            run = await _tenant_run(conn, principal.tenant, run_id)
            if not run.reschedule_delay(task_id, change.due_at):
                raise not_found("Pending delay")
            await store.save_runs(conn, [run], clock())
        if on_timer is not None:
            on_timer(change.due_at)
        return TimerOut(run_id=run_id, task_id=task_id, due_at=change.due_at)

    @router.delete("/runs/{run_id}/tasks/{task_id}/timer", status_code=204)
    async def cancel_timer(run_id: str, task_id: str, principal: CurrentPrincipal) -> Response:
        """Cancel a pending delay: the task is skipped and the run continues."""
        async with database.pool.acquire() as conn, conn.transaction():
            run = await _tenant_run(conn, principal.tenant, run_id)
            now = clock()
            if not run.cancel_delay(task_id, now):
                raise not_found("Pending delay")
            await store.save_runs(conn, [run], now)
        return Response(status_code=204)

    return router
