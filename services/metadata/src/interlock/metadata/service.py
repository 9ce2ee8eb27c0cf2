"""The metadata service's use cases over execution documents.

Adapters call these: the projection (:meth:`ExecutionService.apply`), the REST routes
(search, details, summary) and the reconciler (runs that went quiet).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from interlock.common.mongo import MongoDocument
from interlock.common.paging import Page, PageKey
from interlock.metadata.domain import Fact, OrderBy, Search, Summary, apply, summarize
from interlock.metadata.errors import ExecutionNotFoundError
from interlock.metadata.projection_cache import DocumentCache
from interlock.metadata.store import ExecutionStore

__all__ = ["ExecutionService"]

_PAGES = {
    OrderBy.CREATED_AT_DESC: PageKey("executions", datetime, str),
    OrderBy.DURATION_DESC: PageKey("executions-by-duration", int, str),
}
_SORT_FIELD = {OrderBy.CREATED_AT_DESC: "created_at", OrderBy.DURATION_DESC: "duration_ms"}


class ExecutionService:
    """Execution documents: written from facts, read by search and id.

    Args:
        store: The ``executions`` collection.
        retention: How long a finished run's document is kept.
    """

    def __init__(
        self, store: ExecutionStore, *, retention: timedelta, cache: DocumentCache | None = None
    ) -> None:
        self._store = store
        self._retention = retention
        self._cache = cache if cache is not None else DocumentCache()
        self._writing = asyncio.Lock()

    async def apply(self, facts: Sequence[Fact]) -> int:
        """Fold ``facts`` into their runs' documents and write them, durably.

        The documents this process wrote last are not read again
        (:mod:`~interlock.metadata.projection_cache`), and the other runs are taken to
        be new: their documents are built from the facts alone and inserted, and only
        those found stored already are read and folded into. Calls take turns (the
        projection's and the reconciler's), so neither writes over a document the
        other just wrote.

        Returns:
            How many documents were written.
        """
        by_run: dict[str, list[Fact]] = defaultdict(list)
        for fact in facts:
            by_run[fact.run_id].append(fact)
        async with self._writing:
            kept = self._cache.kept(by_run)
            try:
                inserted, existing = await self._store.insert_new(
                    [
                        apply(None, run_facts, retention=self._retention)
                        for run_id, run_facts in by_run.items()
                        if run_id not in kept
                    ]
                )
                stored = {**kept, **(await self._store.load(existing) if existing else {})}
                changed, unchanged = self._fold(stored, {r: by_run[r] for r in [*kept, *existing]})
                replaced = await self._store.save(changed)
                if inserted or replaced:
                    await self._store.sync()
            except BaseException:
                self._cache.forget(by_run)  # written or not: unknown
                raise
            unread = {run_id: doc for run_id, doc in unchanged.items() if run_id not in kept}
            self._cache.put({**unread, **{doc["_id"]: doc for doc in inserted + replaced}})
        return len(inserted) + len(replaced)

    def _fold(
        self, stored: dict[str, MongoDocument], by_run: dict[str, list[Fact]]
    ) -> tuple[list[MongoDocument], dict[str, MongoDocument]]:
        """The documents ``by_run``'s facts change, and those they leave as stored."""
        changed: list[MongoDocument] = []
        unchanged: dict[str, MongoDocument] = {}
        for run_id, run_facts in by_run.items():
            before = stored.get(run_id)
            after = apply(before, run_facts, retention=self._retention)
            if before is None or after != before:
                changed.append(after)
            else:
                unchanged[run_id] = before
        return changed, unchanged

    def forget_kept(self) -> None:
        """Read every document again before its next write (another writer may own it now).

        Call when the projection's consumer lost or gained partitions: a run whose
        events went to another instance meanwhile has a newer document there.
        """
        self._cache.clear()

    async def get(self, tenant: str, run_id: str) -> MongoDocument:
        """The run's document.

        Raises:
            ExecutionNotFoundError: No such run in ``tenant``.
        """
        doc = await self._store.get(tenant, run_id)
        if doc is None:
            raise ExecutionNotFoundError(f"no execution {run_id!r}")
        return doc

    async def search(
        self, search: Search, *, page_size: int, page_token: str | None
    ) -> Page[MongoDocument]:
        """One page of the runs matching ``search``.

        Raises:
            InvalidPageTokenError: ``page_token`` was not issued for this search.
        """
        page_key, filters = _PAGES[search.order_by], search.fingerprint()
        after = page_key.decode(page_token, filters) if page_token else None
        rows = await self._store.search(
            search, after=after, limit=page_size + 1, now=datetime.now(UTC)
        )
        sort_field = _SORT_FIELD[search.order_by]
        return page_key.page(rows, page_size, lambda doc: (doc[sort_field], doc["_id"]), filters)

    async def summary(
        self, tenant: str, *, window: timedelta, workflow: str | None, now: datetime | None = None
    ) -> Summary:
        """Per workflow, the runs created within ``window`` before ``now``."""
        until = now or datetime.now(UTC)
        since = until - window
        rows = await self._store.summary_rows(tenant, since=since, until=until, workflow=workflow)
        return summarize(rows, since=since, until=until)

    async def quiet_runs(self, *, quiet_for: timedelta, limit: int) -> list[tuple[str, str]]:
        """``(tenant, run id)`` of unfinished runs quiet for ``quiet_for``.

        Runs asked about within that time are left out too.
        """
        bound = datetime.now(UTC) - quiet_for
        return await self._store.open_runs_quiet_since(bound, checked_before=bound, limit=limit)

    async def mark_reconciled(self, run_ids: Sequence[str]) -> None:
        """Remember that these runs were checked now."""
        async with self._writing:
            # Kept copies lack the mark: the next write would drop it.
            self._cache.forget(run_ids)
            await self._store.mark_reconciled(run_ids, datetime.now(UTC))

    async def finished_runs_to_reconcile(
        self, *, quiet_for: timedelta, look_back: timedelta, limit: int
    ) -> list[tuple[str, str]]:
        """``(tenant, run id)`` of finished runs showing a task open, or without their start.

        Only runs quiet for ``quiet_for`` whose last event is within ``look_back``, and
        not asked about within ``quiet_for``.
        """
        now = datetime.now(UTC)
        bound = now - quiet_for
        return await self._store.finished_runs_to_reconcile(
            bound, since=now - look_back, checked_before=bound, limit=limit
        )
