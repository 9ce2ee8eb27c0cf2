"""Task logs in MongoDB: chunks of lines, what is stored per attempt, positions per run.

Collections:

- ``log_chunks``: one document per chunk (``_id`` from :attr:`Chunk.chunk_id`) with
  ``tenant``, ``run_id``, ``task_id``, ``attempt``, ``position`` and ``lines``
  (``seq``, ``time``, ``level``, ``message``); indexed by run and position.
- ``log_runs``: per run, its tenant and, per attempt
  (``attempts``, keyed by :func:`_attempt_field`), the ``seq`` ranges stored (or counted
  past the cap), bytes kept, lines and bytes dropped past the cap, how many lines the
  attempt wrote (from its last event), the worker that sent it, lines missing since
  when, lines lost: one document write per run per batch, where a document per attempt
  cost one per attempt (a fan-out run's batch wrote 12); a run's first is an insert,
  with the batch's other new runs' in one command.
- ``log_gaps``: one per attempt missing lines, while it does: its tenant and when the
  worker is to be asked next (``due``); rare, so the common path writes none.
- ``log_positions``: one counter (``_id`` ``"chunks"``) every chunk position is taken
  from, whatever its run: one write per batch, where a counter per run cost one per
  run (a batch of the fan-out load named about 30 runs).

Every document carries ``expires_at`` (its last write plus the retention), on which a
TTL index removes it. The ``executions`` collection (the execution documents) is only
read here: a run's tenant and status.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, DeleteOne, ReturnDocument, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from interlock.common.mongo import MongoDocument, insert_new
from interlock.common.resources import Lifecycle
from interlock.metadata.logs.domain import (
    AttemptKey,
    AttemptLog,
    LogLine,
    SeqRanges,
    StoredChunk,
    WritePlan,
    lost_marker,
    marker_id,
)

__all__ = ["CHUNKS", "EXECUTIONS", "LogIndexes", "LogStore", "RunState"]

CHUNKS = "log_chunks"
RUNS = "log_runs"
GAPS = "log_gaps"
POSITIONS = "log_positions"
_COUNTER = "chunks"
EXECUTIONS = "executions"
"""The execution documents: ``_id`` the run id, ``tenant``, ``status``."""

Database = Callable[[], AsyncDatabase[MongoDocument]]


@dataclass(frozen=True, slots=True)
class RunState:
    """What the logs need of a run.

    Attributes:
        status: The execution document's status; ``None`` when it has none yet (the
            run is known from its logs only).
    """

    status: str | None


class LogIndexes(Lifecycle):
    """Creates the logs' indexes at start-up (a resource; idempotent).

    Args:
        database: The service's database, once open.
    """

    name = "log-indexes"

    def __init__(self, database: Database) -> None:
        self._database = database

    async def start(self) -> None:
        """Create the indexes that are missing."""
        db = self._database()
        chunks = db[CHUNKS]
        await chunks.create_index([("run_id", ASCENDING), ("position", ASCENDING)])
        await chunks.create_index(
            [
                ("run_id", ASCENDING),
                ("task_id", ASCENDING),
                ("attempt", ASCENDING),
                ("position", ASCENDING),
            ]
        )
        await db[GAPS].create_index("due")
        for name in (CHUNKS, RUNS, GAPS):
            await db[name].create_index("expires_at", expireAfterSeconds=0)
        # Positions were counted per run from 0 before there was one counter: starting
        # it past the time in milliseconds puts every new chunk after those.
        now_ms = int(datetime.now(UTC).timestamp() * 1000)
        await db[POSITIONS].update_one(
            {"_id": _COUNTER}, {"$max": {"next_position": now_ms}}, upsert=True
        )

    async def stop(self) -> None:
        """Nothing to close."""

    async def check(self) -> None:
        """Ready once started (MongoDB's own check covers the server)."""


class LogStore:
    """Reads and writes task logs.

    Args:
        database: The service's database, once open.
        retention: How long a document is kept after its last write.
    """

    def __init__(self, database: Database, *, retention: timedelta) -> None:
        self._database = database
        self._retention = retention

    async def attempt_logs(self, keys: Sequence[AttemptKey]) -> dict[AttemptKey, AttemptLog]:
        """What is stored of each of these attempts' logs (absent: nothing)."""
        found, _ = await self.stored_attempts(keys)
        return found

    async def stored_attempts(
        self, keys: Sequence[AttemptKey]
    ) -> tuple[dict[AttemptKey, AttemptLog], set[str]]:
        """What is stored of each of these attempts' logs, and the runs with a log document.

        A run without one gets it inserted (:meth:`write_attempts`), not updated.
        """
        if not keys:
            return {}, set()
        fields = {f"attempts.{_attempt_field(key)}": True for key in keys}
        cursor = self._database()[RUNS].find({"_id": {"$in": list({k[0] for k in keys})}}, fields)
        attempts = {doc["_id"]: doc.get("attempts") or {} async for doc in cursor}
        found: dict[AttemptKey, AttemptLog] = {}
        for key in keys:
            doc = attempts.get(key[0], {}).get(_attempt_field(key))
            if doc is not None:
                found[key] = _attempt_log(doc)
        return found, set(attempts)

    async def reserve_positions(self, counts: Mapping[str, int]) -> dict[str, int]:
        """Reserve ``counts[run]`` chunk positions for each run; the first of each.

        One counter serves every run: positions only grow, in each run as in all, so a
        reader who read up to one never misses a later chunk.
        """
        total = sum(counts.values())
        if not total:
            return dict.fromkeys(counts, 0)
        doc = await self._database()[POSITIONS].find_one_and_update(
            {"_id": _COUNTER},
            {"$inc": {"next_position": total}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:  # an upsert returning the document after always finds it
            raise RuntimeError("the chunk position counter was not found")
        first: dict[str, int] = {}
        position = int(doc["next_position"]) - total
        for run_id, count in counts.items():
            first[run_id] = position
            position += count
        return first

    async def write_chunks(self, plan: WritePlan, first_positions: Mapping[str, int]) -> None:
        """Store the plan's chunks and markers at their positions (before its attempts).

        Storing the same plan again changes nothing: a chunk already stored keeps its
        position and lines, a marker its position.
        """
        db = self._database()
        expires_at = self._expires_at()
        next_position = dict(first_positions)
        chunks = [
            {
                "_id": chunk.chunk_id,
                **_chunk_fields(chunk.tenant, chunk.attempt),
                "position": _take(next_position, chunk.attempt[0]),
                "lines": [_line_doc(line) for line in chunk.lines],
                "expires_at": expires_at,
            }
            for chunk in plan.chunks
        ]
        if chunks:
            await insert_new(db[CHUNKS], chunks)
        marker_writes: list[UpdateOne | DeleteOne] = [
            UpdateOne(
                {"_id": marker.chunk_id},
                {
                    "$setOnInsert": {
                        **_chunk_fields(marker.tenant, marker.attempt),
                        "position": _take(next_position, marker.attempt[0]),
                    },
                    "$set": {"lines": [_line_doc(marker.line)], "expires_at": expires_at},
                },
                upsert=True,
            )
            for marker in plan.markers
        ]
        marker_writes += [DeleteOne({"_id": chunk_id}) for chunk_id in plan.removed_markers]
        if marker_writes:
            await db[CHUNKS].bulk_write(marker_writes, ordered=True)

    async def write_gaps(self, plan: WritePlan) -> None:
        """Open the plan's gaps (due at once) and close those it closes."""
        now = datetime.now(UTC)
        writes: list[UpdateOne | DeleteOne] = [
            UpdateOne(
                {"_id": _attempt_id(gap.attempt)},
                {
                    "$setOnInsert": {"tenant": gap.tenant, "due": now},
                    "$set": {"expires_at": self._expires_at()},
                },
                upsert=True,
            )
            for gap in plan.gaps
        ]
        writes += [DeleteOne({"_id": _attempt_id(key)}) for key in plan.closed_gaps]
        if writes:
            await self._database()[GAPS].bulk_write(writes, ordered=True)

    async def due_gaps(self, now: datetime, limit: int) -> dict[AttemptKey, str]:
        """Up to ``limit`` attempts whose gap is due at ``now``, with their tenants."""
        cursor = self._database()[GAPS].find({"due": {"$lte": now}}).sort("due").limit(limit)
        due: dict[AttemptKey, str] = {}
        async for doc in cursor:
            run_id, task_id, attempt = json.loads(doc["_id"])
            due[(run_id, task_id, attempt)] = doc["tenant"]
        return due

    async def postpone_gaps(self, keys: Sequence[AttemptKey], due: datetime) -> None:
        """Make these gaps due again at ``due`` (their worker was just asked)."""
        if keys:
            await self._database()[GAPS].update_many(
                {"_id": {"$in": [_attempt_id(k) for k in keys]}}, {"$set": {"due": due}}
            )

    async def close_gaps(self, keys: Sequence[AttemptKey]) -> None:
        """Forget these gaps (nothing is missing any more, or the rest was given up)."""
        if keys:
            await self._database()[GAPS].delete_many(
                {"_id": {"$in": [_attempt_id(k) for k in keys]}}
            )

    async def write_lost(self, tenant: str, key: AttemptKey, log: AttemptLog) -> None:
        """Store the lost marker of ``log`` and what is given up (``log.lost``)."""
        db = self._database()
        expires_at = self._expires_at()
        positions = await self.reserve_positions({key[0]: 1})
        await db[CHUNKS].update_one(
            {"_id": marker_id(key, "lost")},
            {
                "$setOnInsert": {**_chunk_fields(tenant, key), "position": positions[key[0]]},
                "$set": {"lines": [_line_doc(lost_marker(log))], "expires_at": expires_at},
            },
            upsert=True,
        )
        field = f"attempts.{_attempt_field(key)}"
        await db[RUNS].update_one(
            {"_id": key[0]},
            {
                "$set": {
                    f"{field}.lost": _ranges_doc(log.lost),
                    f"{field}.lost_at": log.lost_at,
                    f"{field}.missing_since": log.missing_since,
                    "expires_at": expires_at,
                }
            },
        )

    async def write_attempts(
        self,
        plan: WritePlan,
        tenants: Mapping[str, str],
        stored_runs: Collection[str],
    ) -> None:
        """Store what the plan leaves stored of each attempt (its seqs, size, drops, gap).

        One write of each run's document (with the run's tenant), whatever the number
        of its attempts: the documents of runs not in ``stored_runs`` (those
        :meth:`stored_attempts` found no document of) are inserted together in one
        command, the others updated, one statement each (the local server writes an
        insert of many documents in one transaction, where each update is a statement
        of its own that reads the document, diffs it and rewrites its index entries). A run whose
        document turns out to exist (another instance wrote it) is updated instead.
        """
        expires_at = self._expires_at()
        by_run: dict[str, dict[str, Any]] = {}
        for key, log in plan.attempts.items():
            by_run.setdefault(key[0], {})[_attempt_field(key)] = _attempt_doc(log)
        new_runs = [run_id for run_id in by_run if run_id not in stored_runs]
        existing = await insert_new(
            self._database()[RUNS],
            [
                {
                    "_id": run_id,
                    "tenant": tenants[run_id],
                    "expires_at": expires_at,
                    "attempts": by_run[run_id],
                }
                for run_id in new_runs
            ],
        )
        inserted = set(new_runs) - existing
        run_writes = [
            UpdateOne(
                {"_id": run_id},
                {
                    "$set": {
                        "tenant": tenants[run_id],
                        "expires_at": expires_at,
                        **{f"attempts.{field}": doc for field, doc in attempts.items()},
                    }
                },
                upsert=True,
            )
            for run_id, attempts in by_run.items()
            if run_id not in inserted
        ]
        if run_writes:
            await self._database()[RUNS].bulk_write(run_writes, ordered=False)

    async def run_state(self, tenant: str, run_id: str) -> RunState | None:
        """The run's state, or ``None`` when the tenant has no such run."""
        db = self._database()
        execution = await db[EXECUTIONS].find_one(
            {"_id": run_id, "tenant": tenant}, {"status": True}
        )
        if execution is not None:
            return RunState(status=execution.get("status"))
        if await db[RUNS].find_one({"_id": run_id, "tenant": tenant}, {"_id": True}):
            return RunState(status=None)
        return None

    async def chunks(
        self,
        run_id: str,
        *,
        task_id: str | None,
        attempt: int | None,
        from_position: int,
        below_position: int | None = None,
        newest_first: bool = False,
        limit: int,
    ) -> list[StoredChunk]:
        """Up to ``limit`` chunks of a run, by position, oldest or newest first.

        Only those at ``from_position`` or after, and before ``below_position`` when
        given.
        """
        position: dict[str, int] = {"$gte": from_position}
        if below_position is not None:
            position["$lt"] = below_position
        query: dict[str, Any] = {"run_id": run_id, "position": position}
        if task_id is not None:
            query["task_id"] = task_id
        if attempt is not None:
            query["attempt"] = attempt
        cursor = (
            self._database()[CHUNKS]
            .find(query, {"tenant": False, "expires_at": False, "run_id": False})
            .sort("position", DESCENDING if newest_first else ASCENDING)
            .limit(limit)
        )
        return [
            StoredChunk(
                position=doc["position"],
                task_id=doc["task_id"],
                attempt=doc["attempt"],
                lines=[
                    LogLine(
                        seq=line["seq"],
                        time=line["time"],
                        level=line["level"],
                        message=line["message"],
                    )
                    for line in doc["lines"]
                ],
            )
            async for doc in cursor
        ]

    def _expires_at(self) -> datetime:
        return datetime.now(UTC) + self._retention


def _take(next_position: dict[str, int], run_id: str) -> int:
    position = next_position[run_id]
    next_position[run_id] = position + 1
    return position


def _attempt_field(key: AttemptKey) -> str:
    """The attempt's field name in its run's ``attempts``.

    The task id in hex (a field name must not hold ``.`` or start with ``$``), then the
    attempt number.
    """
    _, task_id, attempt = key
    return f"{task_id.encode().hex()}_{attempt}"


def _attempt_id(key: AttemptKey) -> str:
    """A gap document's id: the attempt's key as JSON."""
    return json.dumps(list(key))


def _chunk_fields(tenant: str, key: AttemptKey) -> dict[str, Any]:
    run_id, task_id, attempt = key
    return {"tenant": tenant, "run_id": run_id, "task_id": task_id, "attempt": attempt}


def _line_doc(line: LogLine) -> dict[str, Any]:
    return {"seq": line.seq, "time": line.time, "level": line.level, "message": line.message}


def _attempt_doc(log: AttemptLog) -> dict[str, Any]:
    return {
        "seqs": _ranges_doc(log.seqs),
        "size": log.size,
        "dropped_lines": log.dropped_lines,
        "dropped_bytes": log.dropped_bytes,
        "dropped_from": (
            {"seq": log.dropped_from[0], "time": log.dropped_from[1]} if log.dropped_from else None
        ),
        "written": log.written,
        "worker_id": log.worker_id,
        "missing_since": log.missing_since,
        "lost": _ranges_doc(log.lost),
        "lost_at": log.lost_at,
    }


def _attempt_log(doc: MongoDocument) -> AttemptLog:
    dropped_from = doc.get("dropped_from")
    seqs = doc.get("seqs")
    if seqs is None:  # stored before gaps were tracked: every seq up to the last one
        seqs = [[1, doc["last_seq"]]] if doc.get("last_seq") else []
    return AttemptLog(
        seqs=_ranges(seqs),
        size=doc["size"],
        dropped_lines=doc["dropped_lines"],
        dropped_bytes=doc["dropped_bytes"],
        dropped_from=(dropped_from["seq"], dropped_from["time"]) if dropped_from else None,
        written=doc.get("written", 0),
        worker_id=doc.get("worker_id", ""),
        missing_since=doc.get("missing_since"),
        lost=_ranges(doc.get("lost") or []),
        lost_at=doc.get("lost_at"),
    )


def _ranges_doc(ranges: SeqRanges) -> list[list[int]]:
    return [[first, last] for first, last in ranges]


def _ranges(doc: list[list[int]]) -> SeqRanges:
    return tuple((int(first), int(last)) for first, last in doc)
