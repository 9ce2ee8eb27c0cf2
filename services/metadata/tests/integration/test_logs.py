"""Task logs against real servers: the consumer, chunked storage, reads, isolation."""

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from interlock.common import topics
from interlock.common.events import Event
from interlock.common.kafka import EventPublisher
from interlock.common.testing import TEST_IDENTITY, app_client, identity_headers
from interlock.devstack import KafkaServer, MongoServer
from interlock.events.v1 import task_pb2
from interlock.metadata import MetadataSettings, create_app
from interlock.metadata.logs import LogsOptions
from interlock.metadata.logs.domain import LineFilter, parse_cursor, plan_writes
from interlock.metadata.logs.errors import RunNotFoundError
from interlock.metadata.logs.handler import LogHandler, incoming_log
from interlock.metadata.logs.service import LogQuery, LogService
from interlock.metadata.logs.store import CHUNKS, EXECUTIONS, LogIndexes, LogStore

pytestmark = pytest.mark.integration

TENANT = "tenant-logs"


def log_event(
    run_id: str, task_id: str, lines: list[tuple[int, str, str]], *, attempt: int = 1
) -> Event[task_pb2.TaskLog]:
    stamp = Timestamp()
    stamp.FromDatetime(datetime.now(UTC))
    return Event(
        type=topics.TASK_LOG,
        payload=task_pb2.TaskLog(
            task_id=task_id,
            attempt=attempt,
            worker_id="w",
            lines=[
                task_pb2.TaskLog.Line(time=stamp, level=level, message=message, seq=seq)
                for seq, level, message in lines
            ],
        ),
        tenant=TENANT,
        run_id=run_id,
        source="worker",
    )


def new_run() -> str:
    return f"run-{secrets.token_hex(4)}"


@pytest.fixture
async def database(mongo_server: MongoServer) -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_server.url, tz_aware=True)
    db = client[f"logs_{secrets.token_hex(4)}"]
    await LogIndexes(lambda: db).start()
    try:
        yield db
    finally:
        await client.drop_database(db.name)
        await client.close()


def service_on(db: AsyncDatabase[dict[str, Any]], **options: Any) -> LogService:
    settings = LogsOptions(**options)
    return LogService(LogStore(lambda: db, retention=LogService.retention(settings)), settings)


async def test_lines_read_in_order_with_tail_level_filter_and_cursors(
    database: AsyncDatabase[dict[str, Any]],
) -> None:
    service = service_on(database)
    run = new_run()
    await LogHandler(service).handle(
        [
            log_event(run, "a", [(1, "INFO", "a1"), (2, "ERROR", "a2 failed")]),
            log_event(run, "b", [(1, "DEBUG", "b1")]),
            log_event(run, "a", [(3, "WARNING", "a3 slow"), (4, "INFO", "a4")]),
        ]
    )
    await LogHandler(service).handle([log_event(run, "b", [(2, "INFO", "b2")])])

    everything = await service.read(TENANT, run, LogQuery())
    assert [(r.task_id, r.line.seq, r.line.message) for r in everything.lines] == [
        ("a", 1, "a1"),
        ("a", 2, "a2 failed"),
        ("b", 1, "b1"),
        ("a", 3, "a3 slow"),
        ("a", 4, "a4"),
        ("b", 2, "b2"),
    ]
    assert everything.end_of_log is False  # the run has not ended
    first = await service.read(TENANT, run, LogQuery(limit=2))
    rest = await service.read(TENANT, run, LogQuery(after=first.next_cursor))
    assert [r.line.message for r in first.lines + rest.lines] == [
        r.line.message for r in everything.lines
    ]
    tail = await service.read(TENANT, run, LogQuery(tail=2))
    assert [r.line.message for r in tail.lines] == ["a4", "b2"]
    only_a = await service.read(TENANT, run, LogQuery(task_id="a", tail=3))
    assert [r.line.message for r in only_a.lines] == ["a2 failed", "a3 slow", "a4"]
    warnings = await service.read(TENANT, run, LogQuery(wanted=LineFilter(level="WARNING")))
    assert [r.line.message for r in warnings.lines] == ["a2 failed", "a3 slow"]
    found = await service.read(TENANT, run, LogQuery(wanted=LineFilter(contains="SLOW")))
    assert [r.line.message for r in found.lines] == ["a3 slow"]

    await database[EXECUTIONS].insert_one({"_id": run, "tenant": TENANT, "status": "succeeded"})
    ended = await service.read(TENANT, run, LogQuery(after=first.next_cursor, limit=3))
    assert ended.end_of_log is False  # a line is left
    last = await service.read(TENANT, run, LogQuery(after=ended.next_cursor))
    assert [r.line.message for r in last.lines] == ["b2"]
    assert last.end_of_log is True


async def test_redelivered_lines_are_stored_once(database: AsyncDatabase[dict[str, Any]]) -> None:
    service = service_on(database)
    handler = LogHandler(service)
    run = new_run()
    first = log_event(run, "a", [(1, "INFO", "one"), (2, "INFO", "two")])
    second = log_event(run, "a", [(3, "INFO", "three")])
    await handler.handle([first])
    await handler.handle([first, second])  # the batch came again, with one more event
    # A worker that re-ran the attempt sends the same lines under new event ids.
    await handler.handle([log_event(run, "a", [(2, "INFO", "two"), (3, "INFO", "three")])])
    page = await service.read(TENANT, run, LogQuery())
    assert [r.line.message for r in page.lines] == ["one", "two", "three"]
    assert await database[CHUNKS].count_documents({"run_id": run}) == 2


async def test_a_run_whose_log_document_appeared_after_the_read_is_updated_not_lost(
    database: AsyncDatabase[dict[str, Any]],
) -> None:
    """A run taken to be new has its document inserted; one that exists after all (another
    instance wrote it since the read) keeps its attempts and gets the batch's."""
    service = service_on(database)
    store = LogStore(lambda: database, retention=LogService.retention(LogsOptions()))
    run, other = new_run(), new_run()
    await LogHandler(service).handle([log_event(run, "a", [(1, "INFO", "a1")])])
    # Read before the other instance wrote "a": the run looks new to this batch.
    _, stored_runs = await store.stored_attempts([(other, "b", 1)])
    assert stored_runs == set()
    await LogHandler(service).handle([log_event(other, "a", [(1, "INFO", "a1")])])
    plan = plan_writes(
        [
            incoming_log(
                log_event(other, "b", [(1, "INFO", "b1")]).payload, tenant=TENANT, run_id=other
            )
        ],
        {},
        cap_bytes=1024,
        now=datetime.now(UTC),
    )
    await store.write_attempts(plan, {other: TENANT}, stored_runs)

    stored, stored_runs = await store.stored_attempts(
        [(other, "a", 1), (other, "b", 1), (run, "a", 1)]
    )
    assert stored_runs == {run, other}
    assert {key: log.seqs for key, log in stored.items()} == {
        (other, "a", 1): ((1, 1),),
        (other, "b", 1): ((1, 1),),
        (run, "a", 1): ((1, 1),),
    }


async def test_chunks_stored_with_a_counter_per_run_stay_first(
    database: AsyncDatabase[dict[str, Any]],
) -> None:
    """Positions once counted per run from 0 stay below those of the one counter."""
    run = new_run()
    await database[CHUNKS].insert_one(
        {
            "_id": "older",
            "tenant": TENANT,
            "run_id": run,
            "task_id": "a",
            "attempt": 1,
            "position": 7,
            "lines": [{"seq": 1, "time": datetime.now(UTC), "level": "INFO", "message": "a1"}],
        }
    )
    await database["log_runs"].insert_one({"_id": run, "tenant": TENANT})
    service = service_on(database)
    await LogHandler(service).handle(
        [log_event(run, "b", [(1, "INFO", "b1")]), log_event(new_run(), "c", [(1, "INFO", "c1")])]
    )
    await LogHandler(service).handle([log_event(run, "a", [(2, "INFO", "a2")])])

    page = await service.read(TENANT, run, LogQuery())
    assert [r.line.message for r in page.lines] == ["a1", "b1", "a2"]


async def test_an_attempt_past_its_cap_keeps_one_marker_saying_what_was_dropped(
    database: AsyncDatabase[dict[str, Any]],
) -> None:
    service = service_on(database, logs_max_bytes_per_attempt=10)
    handler = LogHandler(service)
    run = new_run()
    await handler.handle([log_event(run, "a", [(1, "INFO", "12345"), (2, "INFO", "67890")])])
    await handler.handle([log_event(run, "a", [(3, "INFO", "dropped"), (4, "INFO", "more")])])
    await handler.handle([log_event(run, "a", [(5, "INFO", "again")])])
    await handler.handle([log_event(run, "a", [(5, "INFO", "again")])])  # redelivered
    page = await service.read(TENANT, run, LogQuery())
    assert [(r.line.seq, r.line.level) for r in page.lines] == [
        (1, "INFO"),
        (2, "INFO"),
        (3, "WARNING"),
    ]
    assert page.lines[-1].line.message == (
        "log cap of 10 bytes reached: 3 more lines (16 bytes) dropped"
    )


async def test_another_tenants_run_and_an_unknown_run_are_not_found(
    database: AsyncDatabase[dict[str, Any]],
) -> None:
    service = service_on(database, logs_stream_unknown_run_wait_ms=200)
    run = new_run()
    await LogHandler(service).handle([log_event(run, "a", [(1, "INFO", "secret")])])
    await database[EXECUTIONS].insert_one({"_id": run, "tenant": TENANT, "status": "running"})
    for tenant, run_id in [("someone-else", run), (TENANT, new_run())]:
        with pytest.raises(RunNotFoundError):
            await service.read(tenant, run_id, LogQuery())
        with pytest.raises(RunNotFoundError):
            await service.follow(tenant, run_id, LogQuery())


async def test_a_stream_waits_for_a_run_whose_document_comes_a_moment_later(
    database: AsyncDatabase[dict[str, Any]],
) -> None:
    service = service_on(database, logs_stream_unknown_run_wait_ms=5000)
    run = new_run()  # started, and neither its document nor a line of it stored yet
    following = asyncio.create_task(service.follow(TENANT, run, LogQuery()))
    await asyncio.sleep(0.3)
    assert not following.done()
    await database[EXECUTIONS].insert_one({"_id": run, "tenant": TENANT, "status": "running"})
    stream = await asyncio.wait_for(following, 5)
    await LogHandler(service).handle([log_event(run, "a", [(1, "INFO", "early")])])
    first = await anext(aiter(stream))
    assert isinstance(first, list)
    assert [line.line.message for line in first] == ["early"]


async def test_the_app_consumes_task_log_and_serves_the_logs_route(
    mongo_server: MongoServer, kafka_server: KafkaServer
) -> None:
    settings = MetadataSettings(
        mongo_url=mongo_server.url,
        mongo_database=f"metadata_{secrets.token_hex(4)}",
        kafka_bootstrap_servers=kafka_server.bootstrap_servers,
        kafka_topic_prefix=f"logs{secrets.token_hex(3)}.",
        identity_jwks=TEST_IDENTITY.jwks,
    )
    run = new_run()
    viewer = identity_headers(TENANT, roles=["viewer"])
    async with app_client(create_app(settings)) as client:
        async with EventPublisher(settings, client_id="test-worker") as publisher:
            await publisher.publish(
                [log_event(run, "a", [(n, "INFO", f"line {n}") for n in range(1, 4)])]
            )
        url = f"/api/v1/executions/{run}/logs"
        lines: list[dict[str, Any]] = []
        async with asyncio.timeout(60):
            while len(lines) < 3:
                response = await client.get(url, headers=viewer)
                lines = response.json().get("lines", []) if response.status_code == 200 else []
        other = await client.get(url, headers=identity_headers("other", roles=["viewer"]))
        bad_cursor = await client.get(url, params={"after": "nope"}, headers=viewer)
        bad_limit = await client.get(url, params={"limit": 0}, headers=viewer)
        tail = await client.get(url, params={"tail": 1}, headers=viewer)
    assert [(line["seq"], line["message"], line["task_id"]) for line in lines] == [
        (1, "line 1", "a"),
        (2, "line 2", "a"),
        (3, "line 3", "a"),
    ]
    assert parse_cursor(lines[-1]["cursor"])
    assert lines[0]["time"].endswith("Z")
    assert other.status_code == 404
    assert other.headers["content-type"] == "application/problem+json"
    assert bad_cursor.status_code == 400
    assert bad_limit.status_code == 422
    assert [line["message"] for line in tail.json()["lines"]] == ["line 3"]
    assert tail.json()["end_of_log"] is False
