"""MongoDB: the ``executions`` collection, one document per run (``_id`` = run id).

Writes are one ``bulk_write`` of replacements per consumed batch, journaled. Every
condition next to ``_id`` is left out of writes and reads by id: the local server's
planner scans the whole collection for a filter of several fields, and a hinted index
was slower still. So a write does not check that the document is still the one read:
the run's events are keyed by its id, so one consumer owns the run at a time (see
docs/architecture.md for the rebalance window).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReplaceOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.write_concern import WriteConcern

from interlock.common.mongo import MongoDocument
from interlock.common.resources import Lifecycle
from interlock.common.statuses import ENDED_RUN, RunStatus, TaskStatus
from interlock.metadata.domain import OrderBy, Search, status_workflow

__all__ = ["COLLECTION", "INDEXES", "ExecutionIndexes", "ExecutionStore"]

COLLECTION = "executions"
"""The collection (shared by name with the logs package, which reads ``tenant`` and ``status``)."""

_JOURNALED = WriteConcern(w=1, j=True)
_OPEN_STATUSES = [status.value for status in RunStatus if status not in ENDED_RUN]
_ENDED_STATUSES = [status.value for status in ENDED_RUN]
_OPEN_TASK_STATUSES = [TaskStatus.SCHEDULED.value, TaskStatus.RUNNING.value]
_LIST_FIELDS = {
    "tasks": 0,
    "timeline": 0,
    "input_json": 0,
    "keywords": 0,
    "run_events": 0,
    "task_order": 0,
    "failure_report": 0,
}

INDEXES = [
    IndexModel([("created_at", DESCENDING)], name="created_at"),
    IndexModel([("duration_ms", DESCENDING)], name="duration_ms"),
    IndexModel([("workflow", ASCENDING)], name="workflow"),
    IndexModel([("status_workflow", ASCENDING)], name="status_workflow"),
    IndexModel([("keywords", ASCENDING)], name="keywords"),
    IndexModel([("label_pairs", ASCENDING)], name="label_pairs"),
    IndexModel([("error_types", ASCENDING)], name="error_types"),
    IndexModel([("task_types", ASCENDING)], name="task_types"),
    IndexModel([("last_event_at", ASCENDING)], name="last_event_at"),
    # Retention: a finished run's document carries the time it may go.
    IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0, name="retention"),
]
"""What searches, the reconciler and retention use. Single fields: the local server's
planner scans the whole collection for a query over several fields rather than use a
compound index, and a hinted compound index was slower than a hinted single one."""

_HINTS = ("keywords", "status_workflow", "workflow", "label_pairs", "error_types", "task_types")
"""Filters whose index a search uses, the most selective first (see :func:`_hint`)."""


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

    async def create_indexes(self) -> None:
        """Create the collection's indexes (existing ones are left as they are)."""
        await self._executions.create_indexes(INDEXES)

    async def load(self, run_ids: Iterable[str]) -> dict[str, MongoDocument]:
        """The stored documents of ``run_ids`` that exist, by run id."""
        cursor = self._executions.find({"_id": {"$in": list(run_ids)}})
        return {doc["_id"]: doc async for doc in cursor}

    async def save(self, documents: Sequence[MongoDocument]) -> None:
        """Write ``documents`` (replacing the stored ones) in one bulk write."""
        operations = [
            ReplaceOne({"_id": doc["_id"]}, {**doc, "rev": (doc.get("rev") or 0) + 1}, upsert=True)
            for doc in documents
        ]
        if operations:
            await self._executions.bulk_write(operations, ordered=False)

    async def get(self, tenant: str, run_id: str) -> MongoDocument | None:
        """The run's document if it belongs to ``tenant``."""
        # By id alone: with a second condition the local server scans the collection.
        doc: MongoDocument | None = await self._executions.find_one({"_id": run_id})
        return doc if doc is not None and doc.get("tenant") == tenant else None

    async def search(
        self, search: Search, *, after: Sequence[Any] | None, limit: int
    ) -> list[MongoDocument]:
        """Up to ``limit`` matching documents (without their tasks), after the key ``after``."""
        sort_field = "created_at" if search.order_by is OrderBy.CREATED_AT_DESC else "duration_ms"
        conditions = [_filter(search)]
        if after is not None:
            last, last_id = after
            conditions.append(
                {"$or": [{sort_field: {"$lt": last}}, {sort_field: last, "_id": {"$lt": last_id}}]}
            )
        cursor = (
            self._executions.find({"$and": conditions}, _LIST_FIELDS)
            .sort([(sort_field, DESCENDING), ("_id", DESCENDING)])
            .hint(_hint(conditions[0], sort_field))
            .limit(limit)
        )
        return [doc async for doc in cursor]

    async def summary_rows(
        self, tenant: str, *, since: datetime, until: datetime, workflow: str | None
    ) -> list[tuple[str, str, int | None]]:
        """``(workflow, status, duration_ms)`` of the runs created in ``[since, until)``."""
        query: dict[str, Any] = {"tenant": tenant, "created_at": {"$gte": since, "$lt": until}}
        if workflow is not None:
            query["workflow"] = workflow
        cursor = self._executions.find(query, {"workflow": 1, "status": 1, "duration_ms": 1}).hint(
            _hint(query, "created_at")
        )
        return [
            (doc.get("workflow") or "", doc["status"], doc.get("duration_ms"))
            async for doc in cursor
        ]

    async def open_runs_quiet_since(
        self, before: datetime, *, checked_before: datetime, limit: int
    ) -> list[tuple[str, str]]:
        """``(tenant, run id)`` of unfinished runs with no event since ``before``.

        Runs the reconciler asked about after ``checked_before`` are left out.
        """
        cursor = (
            self._executions.find(
                {
                    "status": {"$in": _OPEN_STATUSES},
                    "last_event_at": {"$lt": before},
                    "$or": [{"reconciled_at": None}, {"reconciled_at": {"$lt": checked_before}}],
                },
                {"tenant": 1},
            )
            .hint("last_event_at")
            .limit(limit)
        )
        return [(doc["tenant"], doc["_id"]) async for doc in cursor]

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
        cursor = (
            self._executions.find(
                {
                    "status": {"$in": _ENDED_STATUSES},
                    "last_event_at": {"$gte": since, "$lt": before},
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
                {"tenant": 1},
            )
            .hint("last_event_at")
            .limit(limit)
        )
        return [(doc["tenant"], doc["_id"]) async for doc in cursor]


def _hint(query: Mapping[str, Any], sort_field: str) -> str:
    """The index a search should use: its most selective filter's, else its order's.

    The local server's planner scans the collection whenever a query has several
    conditions; told which index to use, it reads only the matching entries.
    """
    return next((field for field in _HINTS if field in query), sort_field)


def _filter(search: Search) -> dict[str, Any]:
    query: dict[str, Any] = {"tenant": search.tenant}
    if search.workflow is not None:
        query["workflow"] = search.workflow
    if search.statuses:
        query["status"] = {"$in": [status.value for status in search.statuses]}
        if search.workflow is not None and len(search.statuses) == 1:
            query["status_workflow"] = status_workflow(search.statuses[0], search.workflow)
    if search.labels:
        query["label_pairs"] = {"$all": list(search.labels)}
    if search.task_type is not None:
        query["task_types"] = search.task_type
    if search.error_type is not None:
        query["error_types"] = search.error_type
    if words := search.words:
        query["keywords"] = {"$all": words}
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
        name: Name ``/readyz`` reports. Default: ``"indexes"``.
    """

    def __init__(self, store: ExecutionStore, *, name: str = "indexes") -> None:
        self.name = name
        self._store = store

    async def start(self) -> None:
        """Create the indexes."""
        await self._store.create_indexes()

    async def stop(self) -> None:
        """Nothing to release."""

    async def check(self) -> None:
        """Always ready once created (MongoDB's own check answers for the server)."""
