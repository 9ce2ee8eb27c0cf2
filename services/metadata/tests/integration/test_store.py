"""The executions store against a real MongoDB: what start-up does to older data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from interlock.common.statuses import RunStatus
from interlock.metadata.domain import RunEnded, RunStarted, Search, apply
from interlock.metadata.store import (
    COLLECTION,
    INDEXES,
    LEGACY_INDEXES,
    REPLACED_INDEXES,
    ExecutionStore,
)

pytestmark = pytest.mark.integration

RETENTION = timedelta(days=90)


async def test_start_up_drops_the_replaced_indexes_and_gives_older_documents_their_keys(
    database: AsyncDatabase[dict[str, Any]],
) -> None:
    store = ExecutionStore(lambda: database)
    now = datetime.now(UTC).replace(microsecond=0)
    facts = [
        RunStarted(
            event_id="s", tenant="acme", run_id="run-1", time=now, workflow="nightly-etl", version=1
        ),
        RunEnded(event_id="e", tenant="acme", run_id="run-1", time=now, status=RunStatus.SUCCEEDED),
    ]
    older = apply(None, facts, retention=RETENTION)
    del older["search_keys"]  # as written before search_keys existed
    await database[COLLECTION].insert_one(older)
    await database[COLLECTION].create_index([("keywords", ASCENDING)], name="keywords")
    await database[COLLECTION].create_index([("workflow", ASCENDING)], name="workflow")

    await store.create_indexes(retention=RETENTION)

    names = {index["name"] async for index in await database[COLLECTION].list_indexes()}
    assert names.isdisjoint(LEGACY_INDEXES)
    assert {index.document["name"] for index in INDEXES} <= names
    found = await store.search(Search(tenant="acme", q="etl"), after=None, limit=10, now=now)
    assert [doc["_id"] for doc in found] == ["run-1"]


async def test_start_up_replaces_the_search_keys_index_and_older_documents_are_found(
    database: AsyncDatabase[dict[str, Any]],
) -> None:
    store = ExecutionStore(lambda: database)
    now = datetime.now(UTC).replace(microsecond=0)
    older = [
        apply(
            None,
            [
                RunStarted(
                    event_id=f"s{days}",
                    tenant="acme",
                    run_id=f"run-{days}",
                    time=now - timedelta(days=days),
                    workflow="nightly-etl",
                    version=1,
                )
            ],
            retention=RETENTION,
        )
        for days in (0, 3, 30)
    ]
    await database[COLLECTION].insert_many(older)  # written under the single-key index
    await database[COLLECTION].create_index([("search_keys", ASCENDING)], name="search_keys")

    await store.create_indexes(retention=RETENTION)

    names = {index["name"] async for index in await database[COLLECTION].list_indexes()}
    assert names.isdisjoint(REPLACED_INDEXES)
    found = await store.search(Search(tenant="acme", q="nightly"), after=None, limit=10, now=now)
    assert [doc["_id"] for doc in found] == ["run-0", "run-3", "run-30"]
