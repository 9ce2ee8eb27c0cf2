"""MongoDB: the ``executions`` collection, one document per run (``_id`` = run id).

Writes are one ``bulk_write`` of replacements per consumed batch, made durable by one
journaled write after it (:meth:`ExecutionStore.save`). A write does not check that the
document is still the one read: the run's events are keyed by its id, so one consumer
owns the run at a time (see docs/architecture.md for the rebalance window).

Reads are aggregations that open with a ``$match`` on one indexed condition, the most
selective the request has (the *driver*), and apply every other condition in a second
``$match``. The local MongoDB-protocol server serves a find or ``$match`` from an index
only for its first indexable condition and a ``hint`` makes it read the whole index
(a search over 100,000 documents took tens of seconds); a real MongoDB merges the two
stages and plans them as one query, so the split costs it nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReplaceOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.write_concern import WriteConcern

from interlock.common.mongo import MongoDocument
from interlock.common.resources import Lifecycle
from interlock.common.statuses import ENDED_RUN, RunStatus, TaskStatus
from interlock.metadata.domain import (
    CreationWindows,
    OrderBy,
    Search,
    SearchKey,
    Window,
    apply,
)

__all__ = ["COLLECTION", "INDEXES", "ExecutionIndexes", "ExecutionStore"]

COLLECTION = "executions"
"""The collection (shared by name with the logs package, which reads ``tenant`` and ``status``)."""
JOURNAL_MARKS = "journal_marks"
"""One small document per writer, rewritten journaled after each unjournaled bulk write:
the journal is one sequence, so syncing it up to that write syncs the bulk write too."""

_JOURNALED = WriteConcern(w=1, j=True)
_OPEN_STATUSES = [status.value for status in RunStatus if status not in ENDED_RUN]
_ENDED_STATUSES = [status.value for status in ENDED_RUN]
_OPEN_TASK_STATUSES = [TaskStatus.SCHEDULED.value, TaskStatus.RUNNING.value]
_LIST_FIELDS = {
    "tasks": 0,
    "timeline": 0,
    "input_json": 0,
    "search_keys": 0,
    "run_events": 0,
    "task_order": 0,
    "failure_report": 0,
}

INDEXES = [
    IndexModel([("created_at", DESCENDING)], name="created_at"),
    IndexModel([("duration_ms", DESCENDING)], name="duration_ms"),
    IndexModel(
        [("search_keys", ASCENDING), ("created_at", DESCENDING)], name="search_keys_created_at"
    ),
    IndexModel([("last_event_at", ASCENDING)], name="last_event_at"),
    # Retention: a finished run's document carries the time it may go.
    IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0, name="retention"),
]
"""What searches, the reconciler and retention use (one search condition each: see
:func:`_driver`). Every exact condition is a key of ``search_keys`` (one multikey index,
by key then creation time, so one lookup reads a key's runs of one window of time):
each index costs every document write its upkeep, and the local server reads each
index's definition again for every statement."""

REPLACED_INDEXES = ("search_keys",)
"""Indexes the ones above replaced without changing what documents hold: dropped at
start-up."""

LEGACY_INDEXES = (
    "workflow",
    "status_workflow_created_at",
    "keywords",
    "label_pairs",
    "error_types",
    "task_types",
)
"""Indexes of the fields ``search_keys`` replaced: dropped at start-up, and the documents
written before are given their ``search_keys`` then."""

_BACKFILL_BATCH = 500


class ExecutionStore:
    """Reads and writes execution documents.

    Args:
        db: A callable returning the service's open database.
    """

    def __init__(self, db: Callable[[], AsyncDatabase[MongoDocument]]) -> None:
        self._db = db

    @property
    def _executions(self) -> Any:
        # Journaled writes: the consumer commits its offsets after a write returns, so a
        # write MongoDB acknowledged and then lost in a crash would be lost for good.
        return self._db().get_collection(COLLECTION, write_concern=_JOURNALED)

    async def create_indexes(self, *, retention: timedelta) -> None:
        """Create the collection's indexes (existing ones are left as they are).

        Where the indexes of the fields ``search_keys`` replaced are found, they are
        dropped and the documents without ``search_keys`` get them (once).
        """
        await self._executions.create_indexes(INDEXES)
        existing = {index["name"] async for index in await self._executions.list_indexes()}
        for name in REPLACED_INDEXES:
            if name in existing:
                await self._executions.drop_index(name)
        legacy = [name for name in LEGACY_INDEXES if name in existing]
        if not legacy:
            return
        for name in legacy:
            await self._executions.drop_index(name)
        await self._backfill_search_keys(retention)

    async def _backfill_search_keys(self, retention: timedelta) -> None:
        while True:
            cursor = self._executions.find({"search_keys": None}).limit(_BACKFILL_BATCH)
            documents = [apply(doc, [], retention=retention) async for doc in cursor]
            if not documents:
                return
            await self.save(documents)

    async def load(self, run_ids: Iterable[str]) -> dict[str, MongoDocument]:
        """The stored documents of ``run_ids`` that exist, by run id."""
        cursor = self._executions.find({"_id": {"$in": list(run_ids)}})
        return {doc["_id"]: doc async for doc in cursor}

    async def save(self, documents: Sequence[MongoDocument]) -> list[MongoDocument]:
        """Write ``documents`` (replacing the stored ones) in one bulk write, durably.

        The bulk write is not journaled; one journaled write of a marker follows it,
        and the journal is one sequence, so once that returns the whole batch is on
        disk. Journaling every replacement cost the local server one fsync per
        document (its bulk writes commit each statement on its own): about half the
        projection's time in a micro-benchmark. A transaction did not help there: it
        commits without syncing its journal whatever the write concern says.

        Returns:
            The documents as written: each with its ``rev`` one up.
        """
        revised = [{**doc, "rev": (doc.get("rev") or 0) + 1} for doc in documents]
        if revised:
            operations = [ReplaceOne({"_id": doc["_id"]}, doc, upsert=True) for doc in revised]
            await self._db()[COLLECTION].bulk_write(operations, ordered=False)
            await self._journal_mark()
        return revised

    async def _journal_mark(self) -> None:
        marks = self._db().get_collection(JOURNAL_MARKS, write_concern=_JOURNALED)
        await marks.update_one({"_id": COLLECTION}, {"$inc": {"writes": 1}}, upsert=True)

    async def get(self, tenant: str, run_id: str) -> MongoDocument | None:
        """The run's document if it belongs to ``tenant``."""
        # By id alone: with a second condition the local server scans the collection.
        doc: MongoDocument | None = await self._executions.find_one({"_id": run_id})
        return doc if doc is not None and doc.get("tenant") == tenant else None

    async def search(
        self, search: Search, *, after: Sequence[Any] | None, limit: int, now: datetime
    ) -> list[MongoDocument]:
        """Up to ``limit`` matching documents (without their tasks), after the key ``after``.

        Newest first, the search reads one window of creation time after another
        (:class:`CreationWindows`) until the page is full.
        """
        query = _filter(search)
        if search.order_by is OrderBy.DURATION_DESC:
            if after is not None:
                query["$or"] = _after("duration_ms", after)
            created = {"created_at": query["created_at"]} if "created_at" in query else {}
            return await self._matching(
                query,
                _driver(search) or created,
                sort={"duration_ms": DESCENDING, "_id": DESCENDING},
                limit=limit,
                projection=_LIST_FIELDS,
            )
        if after is not None:
            query["$or"] = _after("created_at", after)
        windows = _creation_windows(search, after, now=now, wanted=limit)
        rows: list[MongoDocument] = []
        while (window := windows.next(len(rows))) is not None:
            rows += await self._matching(
                query,
                {**_driver(search), **_window_range(window)},
                sort={"created_at": DESCENDING, "_id": DESCENDING},
                limit=limit - len(rows),
                projection=_LIST_FIELDS,
            )
        return rows

    async def summary_rows(
        self, tenant: str, *, since: datetime, until: datetime, workflow: str | None
    ) -> list[tuple[str, str, int | None]]:
        """``(workflow, status, duration_ms)`` of the runs created in ``[since, until)``."""
        created = {"$gte": since, "$lt": until}
        query: dict[str, Any] = {"tenant": tenant, "created_at": created}
        driver: dict[str, Any] = {"created_at": created}
        if workflow is not None:
            query["workflow"] = workflow
            driver = {"search_keys": SearchKey.workflow(workflow), "created_at": created}
        rows = await self._matching(
            query, driver, projection={"workflow": 1, "status": 1, "duration_ms": 1}
        )
        return [(doc.get("workflow") or "", doc["status"], doc.get("duration_ms")) for doc in rows]

    async def open_runs_quiet_since(
        self, before: datetime, *, checked_before: datetime, limit: int
    ) -> list[tuple[str, str]]:
        """``(tenant, run id)`` of unfinished runs with no event since ``before``.

        Runs the reconciler asked about after ``checked_before`` are left out.
        """
        # An unfinished run has no expires_at: that is what the retention index reads
        # for a null, so only unfinished runs are looked at.
        rows = await self._matching(
            {
                "status": {"$in": _OPEN_STATUSES},
                "last_event_at": {"$lt": before},
                "$or": [{"reconciled_at": None}, {"reconciled_at": {"$lt": checked_before}}],
            },
            {"expires_at": None},
            limit=limit,
            projection={"tenant": 1},
        )
        return [(doc["tenant"], doc["_id"]) for doc in rows]

    async def mark_reconciled(self, run_ids: Sequence[str], at: datetime) -> None:
        """Remember that the reconciler asked about ``run_ids`` at ``at``."""
        if run_ids:
            await self._executions.update_many(
                {"_id": {"$in": list(run_ids)}}, {"$set": {"reconciled_at": at}}
            )

    async def finished_runs_to_reconcile(
        self, before: datetime, *, since: datetime, checked_before: datetime, limit: int
    ) -> list[tuple[str, str]]:
        """``(tenant, run id)`` of finished runs showing a task open, or without their start.

        Only runs whose last event is in ``[since, before)``. Runs the reconciler asked
        about after ``checked_before`` are left out.
        """
        docs = await self._matching(
            {
                "status": {"$in": _ENDED_STATUSES},
                "$and": [
                    # a task open, or no workflow.started: tasks may be missing
                    {
                        "$or": [
                            {"tasks.status": {"$in": _OPEN_TASK_STATUSES}},
                            {"run_events.started": None},
                        ]
                    },
                    {
                        "$or": [
                            {"reconciled_at": None},
                            {"reconciled_at": {"$lt": checked_before}},
                        ]
                    },
                ],
            },
            {"last_event_at": {"$gte": since, "$lt": before}},
            projection={"tenant": 1},
            limit=limit,
        )
        return [(doc["tenant"], doc["_id"]) for doc in docs]

    async def _matching(
        self,
        query: Mapping[str, Any],
        driver: Mapping[str, Any],
        *,
        projection: Mapping[str, Any],
        sort: Mapping[str, int] | None = None,
        limit: int | None = None,
    ) -> list[MongoDocument]:
        """The documents matching ``driver`` and ``query``, ``driver`` first (see above)."""
        pipeline: list[dict[str, Any]] = [{"$match": dict(driver)}] if driver else []
        pipeline.append({"$match": dict(query)})
        if sort is not None:
            pipeline.append({"$sort": dict(sort)})
        if limit is not None:
            pipeline.append({"$limit": limit})
        pipeline.append({"$project": dict(projection)})
        cursor = await self._executions.aggregate(pipeline)
        return [doc async for doc in cursor]


def _driver(search: Search) -> dict[str, Any]:
    """The one indexed key a search's index lookup starts from (none without keys).

    The likely most selective key: a workflow's runs in one status, a label, an error
    type, a word of ``q``, a task type, the workflow.
    """
    keys = _keys(search)
    return {"search_keys": keys[0]} if keys else {}


def _after(sort_field: str, after: Sequence[Any]) -> list[dict[str, Any]]:
    """The rows after the page cursor ``(sort value, run id)``, in descending order."""
    last, last_id = after
    return [{sort_field: {"$lt": last}}, {sort_field: last, "_id": {"$lt": last_id}}]


def _creation_windows(
    search: Search, after: Sequence[Any] | None, *, now: datetime, wanted: int
) -> CreationWindows:
    """The windows a newest-first search reads: below its cursor and ``created_before``."""
    newest, inclusive = search.created_before, False
    if after is not None and (newest is None or after[0] < newest):
        newest, inclusive = after[0], True
    return CreationWindows(
        newest=newest,
        newest_inclusive=inclusive,
        oldest=search.created_after,
        now=now,
        wanted=wanted,
    )


def _window_range(window: Window) -> dict[str, Any]:
    """The ``created_at`` condition of ``window`` (none for a window without bounds)."""
    bounds = {}
    if window.start is not None:
        bounds["$gte"] = window.start
    if window.end is not None:
        bounds["$lte" if window.end_inclusive else "$lt"] = window.end
    return {"created_at": bounds} if bounds else {}


def _keys(search: Search) -> list[str]:
    """The search's ``search_keys`` conditions, the likely most selective first."""
    keys = []
    if search.workflow is not None and len(search.statuses) == 1:
        keys.append(SearchKey.status_workflow(search.statuses[0], search.workflow))
    keys += [SearchKey.label(pair) for pair in search.labels]
    if search.error_type is not None:
        keys.append(SearchKey.error_type(search.error_type))
    if words := search.words:
        keys += [SearchKey.word(word) for word in sorted(words, key=_rarity, reverse=True)]
    if search.task_type is not None:
        keys.append(SearchKey.task_type(search.task_type))
    if search.workflow is not None:
        keys.append(SearchKey.workflow(search.workflow))
    return keys


def _rarity(word: str) -> tuple[bool, int]:
    """How rare a word of ``q`` is likely to be among runs (there are no word counts).

    Words with digits first (ids, codes, numbers name few runs), then the longest.
    """
    return any(c.isdigit() for c in word), len(word)


def _filter(search: Search) -> dict[str, Any]:
    query: dict[str, Any] = {"tenant": search.tenant}
    if keys := _keys(search):
        query["search_keys"] = {"$all": keys}
    if search.statuses:
        query["status"] = {"$in": [status.value for status in search.statuses]}
    created = _range(search.created_after, search.created_before)
    if created:
        query["created_at"] = created
    finished = _range(search.finished_after, search.finished_before)
    if finished:
        query["finished_at"] = finished
    if search.order_by is OrderBy.DURATION_DESC:
        query["duration_ms"] = {"$gte": 0}
    return query


def _range(after: datetime | None, before: datetime | None) -> Mapping[str, datetime]:
    bounds = {}
    if after is not None:
        bounds["$gte"] = after
    if before is not None:
        bounds["$lt"] = before
    return bounds


class ExecutionIndexes(Lifecycle):
    """Creates the collection's indexes at start-up (a resource; MongoDB down: start fails).

    Args:
        store: The store whose indexes to create.
        retention: How long a finished run's document is kept (documents given their
            ``search_keys`` at start-up are derived again).
        name: Name ``/readyz`` reports. Default: ``"indexes"``.
    """

    def __init__(
        self, store: ExecutionStore, *, retention: timedelta, name: str = "indexes"
    ) -> None:
        self.name = name
        self._store = store
        self._retention = retention

    async def start(self) -> None:
        """Create the indexes."""
        await self._store.create_indexes(retention=self._retention)

    async def stop(self) -> None:
        """Nothing to release."""

    async def check(self) -> None:
        """Always ready once created (MongoDB's own check answers for the server)."""
