"""The projection folds into the documents it kept as if it had read them back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from interlock.common.statuses import RunStatus
from interlock.metadata.domain import (
    AttemptFinished,
    AttemptScheduled,
    AttemptStarted,
    Fact,
    RunEnded,
    RunStarted,
    apply,
)
from interlock.metadata.projection_cache import DocumentCache
from interlock.metadata.service import ExecutionService
from interlock.metadata.store import COLLECTION, ExecutionStore

pytestmark = pytest.mark.integration

RETENTION = timedelta(days=90)
T0 = datetime.now(UTC).replace(microsecond=0)
RUN = "run-1"


def _facts() -> list[list[Fact]]:
    """One run's facts in the batches a busy projection sees them."""
    base: dict[str, Any] = {"tenant": "acme", "run_id": RUN}

    def at(n: int) -> dict[str, Any]:
        return {**base, "event_id": f"e{n}", "time": T0 + timedelta(milliseconds=n)}

    return [
        [
            RunStarted(**at(0), workflow="etl", version=1, task_types={"a": "noop", "b": "noop"}),
            AttemptScheduled(**at(1), task_id="a", attempt=1, task_type="noop"),
        ],
        [
            AttemptStarted(**at(2), task_id="a", attempt=1, worker_id="w1"),
            AttemptFinished(**at(3), task_id="a", attempt=1, worker_id="w1"),
            AttemptScheduled(**at(4), task_id="b", attempt=1, task_type="noop"),
        ],
        [AttemptFinished(**at(5), task_id="b", attempt=1, worker_id="w2")],
        [RunEnded(**at(6), status=RunStatus.SUCCEEDED, workflow="etl", version=1)],
    ]


async def _stored(database: AsyncDatabase[dict[str, Any]]) -> dict[str, Any]:
    doc = await database[COLLECTION].find_one({"_id": RUN})
    assert doc is not None
    return doc


async def test_batches_folded_into_kept_documents_store_what_reading_back_would(
    database: AsyncDatabase[dict[str, Any]],
) -> None:
    cache = DocumentCache()
    service = ExecutionService(ExecutionStore(lambda: database), retention=RETENTION, cache=cache)
    batches = _facts()
    folded: list[Fact] = []

    for number, batch in enumerate(batches, start=1):
        assert await service.apply(batch) == 1
        folded += batch
        stored = await _stored(database)
        assert stored["rev"] == number
        assert {k: v for k, v in stored.items() if k != "rev"} == apply(
            None, folded, retention=RETENTION
        )
        # Kept while the run is open, as stored; forgotten once it ended.
        assert cache.kept([RUN]) == ({} if number == len(batches) else {RUN: stored})

    assert await service.apply(batches[1]) == 0  # a redelivered batch changes nothing


async def test_the_reconcilers_mark_survives_the_next_batch(
    database: AsyncDatabase[dict[str, Any]],
) -> None:
    service = ExecutionService(ExecutionStore(lambda: database), retention=RETENTION)
    first, second, *_ = _facts()
    await service.apply(first)

    await service.mark_reconciled([RUN])
    await service.apply(second)

    stored = await _stored(database)
    assert stored["reconciled_at"] is not None
    assert [t["status"] for t in stored["tasks"]] == ["succeeded", "scheduled"]


async def test_after_a_rebalance_the_documents_are_read_again(
    database: AsyncDatabase[dict[str, Any]],
) -> None:
    """A run whose events another instance applied meanwhile keeps that instance's facts."""
    here = ExecutionService(ExecutionStore(lambda: database), retention=RETENTION)
    elsewhere = ExecutionService(ExecutionStore(lambda: database), retention=RETENTION)
    first, second, third, _ = _facts()
    await here.apply(first)
    await elsewhere.apply(second)  # the partition moved away and back

    here.forget_kept()
    await here.apply(third)

    stored = await _stored(database)
    assert [t["status"] for t in stored["tasks"]] == ["succeeded", "succeeded"]
