"""Use cases of task logs: store a batch of lines, read a page, follow a run's log."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from interlock.common.statuses import ENDED_RUN
from interlock.metadata.logs.domain import (
    Cursor,
    IncomingLog,
    LineFilter,
    ReadLine,
    most_positions,
    plan_writes,
    select_lines,
    select_tail,
)
from interlock.metadata.logs.errors import RunNotFoundError
from interlock.metadata.logs.options import LogsOptions
from interlock.metadata.logs.store import LogStore

__all__ = ["END", "HEARTBEAT", "LogPage", "LogQuery", "LogService"]

_CHUNKS_PER_READ = 200
_STREAM_PAGE_LINES = 500
_STATUS_EVERY_S = 1.0

HEARTBEAT = "heartbeat"
"""Yielded by :meth:`LogService.follow` when the stream was quiet for the heartbeat
interval."""
END = "end"
"""Yielded by :meth:`LogService.follow` last: the run ended and every line was sent."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LogQuery:
    """Which lines of a run to read.

    Attributes:
        task_id: Only this task's. Default: every task's.
        attempt: Only this attempt's. Default: every attempt's.
        wanted: Level and text filters. Default: every line.
        after: Only lines after this cursor. Default: from the start.
        tail: Only the last this many lines. Default: from ``after`` on.
        limit: Most lines returned.
    """

    task_id: str | None = None
    attempt: int | None = None
    wanted: LineFilter = field(default_factory=LineFilter)
    after: Cursor | None = None
    tail: int | None = None
    limit: int = 1000


@dataclass(frozen=True, slots=True)
class LogPage:
    """Lines read, with where to read on.

    Attributes:
        lines: In log order.
        next_cursor: Read on after it (``None``: the log has no line yet).
        more: Whether lines after ``next_cursor`` exist already.
        end_of_log: The run has ended and every line has been returned.
    """

    lines: list[ReadLine]
    next_cursor: Cursor | None
    more: bool
    end_of_log: bool


class _Wakeups:
    """Wakes this process's followers of a run when its consumer stored lines of it.

    Followers still poll: another instance's consumer may have stored them.
    """

    def __init__(self) -> None:
        self._waiting: dict[str, set[asyncio.Event]] = {}

    def notify(self, run_ids: Iterable[str]) -> None:
        for run_id in run_ids:
            for event in self._waiting.get(run_id, ()):
                event.set()

    @contextlib.contextmanager
    def watch(self, run_id: str) -> Iterator[asyncio.Event]:
        event = asyncio.Event()
        self._waiting.setdefault(run_id, set()).add(event)
        try:
            yield event
        finally:
            waiting = self._waiting[run_id]
            waiting.discard(event)
            if not waiting:
                del self._waiting[run_id]


class LogService:
    """Stores task log lines and serves them.

    Args:
        store: Where logs are kept.
        options: The cap, retention and stream timings.
    """

    def __init__(self, store: LogStore, options: LogsOptions) -> None:
        self._store = store
        self._cap_bytes = options.logs_max_bytes_per_attempt
        self._heartbeat_s = options.logs_stream_heartbeat_s
        self._poll_s = options.logs_stream_poll_interval_ms / 1000
        self._end_grace_s = options.logs_stream_end_grace_ms / 1000
        self._unknown_run_wait_s = options.logs_stream_unknown_run_wait_ms / 1000
        self._wakeups = _Wakeups()

    @staticmethod
    def retention(options: LogsOptions) -> timedelta:
        """How long log documents are kept after their last write."""
        return timedelta(days=options.logs_retention_days)

    async def ingest(self, incoming: Sequence[IncomingLog]) -> None:
        """Store the lines of a batch of ``task.log`` events (idempotent).

        Writes in a fixed order (chunks, gaps, then what is stored per attempt), so a
        batch stored in part and delivered again ends up stored once.
        """
        if not incoming:
            return
        tenants = {event.attempt[0]: event.tenant for event in incoming}
        # Each round trip is paid by every line a client follows live: the two that
        # do not depend on each other run together, and followers are woken as soon
        # as the chunks are stored (the attempts' state only serves the next batch).
        (stored, stored_runs), positions = await asyncio.gather(
            self._store.stored_attempts(list({event.attempt for event in incoming})),
            self._store.reserve_positions(most_positions(incoming)),
        )
        plan = plan_writes(incoming, stored, cap_bytes=self._cap_bytes, now=datetime.now(UTC))
        await self._store.write_chunks(plan, positions)
        self._wakeups.notify(positions)
        await self._store.write_gaps(plan)
        await self._store.write_attempts(plan, tenants, stored_runs)

    async def read(self, tenant: str, run_id: str, query: LogQuery) -> LogPage:
        """One page of a run's log.

        Raises:
            RunNotFoundError: The tenant has no such run.
        """
        ended = await self._run_ended(tenant, run_id)
        if query.tail is not None:
            return await self._tail(run_id, query, ended)
        return await self._forward(run_id, query, ended)

    async def follow(
        self, tenant: str, run_id: str, query: LogQuery
    ) -> AsyncIterator[list[ReadLine] | str]:
        """Follow a run's log.

        The iterator yields batches of lines as they are stored, :data:`HEARTBEAT`
        when quiet, and :data:`END` once the run ended and every line was sent.

        A run not known yet is waited for a moment: a client follows a run right after
        starting it, and the run's document is written by the next consumed batch.

        Raises:
            RunNotFoundError: The tenant has no such run (before anything is yielded).
        """
        deadline = time.monotonic() + self._unknown_run_wait_s
        while True:
            try:
                await self._run_ended(tenant, run_id)
            except RunNotFoundError:
                if time.monotonic() >= deadline:
                    raise
                await asyncio.sleep(self._poll_s)
            else:
                return self._follow(tenant, run_id, query)

    async def _follow(
        self, tenant: str, run_id: str, query: LogQuery
    ) -> AsyncIterator[list[ReadLine] | str]:
        cursor = query.after
        if query.tail is not None:
            page = await self.read(tenant, run_id, query)
            cursor = page.next_cursor
            if page.lines:
                yield page.lines
        forward = LogQuery(
            task_id=query.task_id,
            attempt=query.attempt,
            wanted=query.wanted,
            limit=_STREAM_PAGE_LINES,
        )
        with self._wakeups.watch(run_id) as stored:
            async for event in self._poll(tenant, run_id, forward, cursor, stored):
                yield event

    async def _poll(
        self,
        tenant: str,
        run_id: str,
        forward: LogQuery,
        cursor: Cursor | None,
        stored: asyncio.Event,
    ) -> AsyncIterator[list[ReadLine] | str]:
        quiet_since = time.monotonic()
        ended_since: float | None = None  # seen ended, and no line came since
        ended, status_due = False, 0.0
        while True:
            stored.clear()
            page = await self._forward(run_id, _after(forward, cursor), ended=False)
            cursor = page.next_cursor
            now = time.monotonic()
            if page.lines:
                yield page.lines
                quiet_since, ended_since = now, None
            if page.more:
                continue
            # The run's status is read less often than its lines: a poll is one query.
            if now >= status_due:
                ended, status_due = await self._run_ended(tenant, run_id), now + _STATUS_EVERY_S
            if ended and not page.lines:
                ended_since = now if ended_since is None else ended_since
                if now - ended_since >= self._end_grace_s:
                    yield END
                    return
            if now - quiet_since >= self._heartbeat_s:
                yield HEARTBEAT
                quiet_since = now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stored.wait(), self._poll_s)

    async def _run_ended(self, tenant: str, run_id: str) -> bool:
        run = await self._store.run_state(tenant, run_id)
        if run is None:
            raise RunNotFoundError(f"no run {run_id!r}")
        return run.status in ENDED_RUN

    async def _forward(self, run_id: str, query: LogQuery, ended: bool) -> LogPage:
        lines: list[ReadLine] = []
        cursor = query.after
        while True:
            chunks = await self._store.chunks(
                run_id,
                task_id=query.task_id,
                attempt=query.attempt,
                from_position=cursor.position if cursor else 0,
                limit=_CHUNKS_PER_READ,
            )
            found, cursor, more = select_lines(
                chunks, after=cursor, wanted=query.wanted, limit=query.limit - len(lines)
            )
            lines += found
            if more or len(chunks) < _CHUNKS_PER_READ:
                return LogPage(lines, cursor, more, end_of_log=ended and not more)

    async def _tail(self, run_id: str, query: LogQuery, ended: bool) -> LogPage:
        count = min(query.tail or 0, query.limit)
        below: int | None = None
        chunks = []
        while True:
            page = await self._store.chunks(
                run_id,
                task_id=query.task_id,
                attempt=query.attempt,
                from_position=query.after.position if query.after else 0,
                below_position=below,
                newest_first=True,
                limit=_CHUNKS_PER_READ,
            )
            chunks += page
            lines, newest = select_tail(chunks, after=query.after, wanted=query.wanted, count=count)
            if len(lines) == count or len(page) < _CHUNKS_PER_READ:
                return LogPage(lines, newest, more=False, end_of_log=ended)
            below = page[-1].position


def _after(query: LogQuery, cursor: Cursor | None) -> LogQuery:
    return LogQuery(
        task_id=query.task_id,
        attempt=query.attempt,
        wanted=query.wanted,
        after=cursor,
        limit=query.limit,
    )
