import asyncio
import time
from collections import Counter
from collections.abc import Sequence

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError

from interlock.common import topics
from interlock.common.events import Event
from interlock.common.kafka import EventConsumer, EventPublisher, check_kafka
from interlock.common.settings import KafkaOptions
from interlock.events.v1 import task_pb2

pytestmark = pytest.mark.integration

TYPES = [topics.TASK_STARTED, topics.TASK_COMPLETED]


def started(run_id: str, n: int) -> Event:
    return Event(
        type=topics.TASK_STARTED,
        payload=task_pb2.TaskStarted(task_id=f"task-{n}", attempt=1, worker_id="w"),
        tenant="tenant",
        run_id=run_id,
        source="test",
    )


class Collector:
    """A handler that records every batch it is given."""

    def __init__(self) -> None:
        self.batches: list[list[Event]] = []

    async def __call__(self, events: Sequence[Event]) -> None:
        self.batches.append(list(events))

    @property
    def events(self) -> list[Event]:
        return [event for batch in self.batches for event in batch]


async def test_ensure_topics_is_idempotent_and_uses_the_partition_count(
    kafka_options: KafkaOptions,
) -> None:
    await topics.ensure_topics(kafka_options)
    await topics.ensure_topics(kafka_options)

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_options.kafka_bootstrap_servers)
    await admin.start()
    try:
        described = await admin.describe_topics([t.topic(kafka_options) for t in topics.ALL])
    finally:
        await admin.close()
    assert {d["topic"]: len(d["partitions"]) for d in described} == {
        t.topic(kafka_options): kafka_options.kafka_partitions for t in topics.ALL
    }


async def test_published_batch_is_consumed_in_batches_in_order_per_run(
    kafka_options: KafkaOptions, group_id: str, running, eventually
) -> None:
    await topics.ensure_topics(kafka_options, TYPES)
    events = [started(f"run-{n % 5}", n) for n in range(60)]
    async with EventPublisher(kafka_options, client_id="test") as publisher:
        await publisher.publish(events)

    collect = Collector()
    consumer = EventConsumer(kafka_options, group_id=group_id, event_types=TYPES, handler=collect)
    async with running(consumer):
        await eventually(lambda: len(collect.events) >= len(events))

    assert sorted(collect.events, key=lambda e: e.id) == sorted(events, key=lambda e: e.id)
    for run in {e.run_id for e in events}:
        assert [e for e in collect.events if e.run_id == run] == [
            e for e in events if e.run_id == run
        ]
    assert max(len(batch) for batch in collect.batches) > 1


async def test_failed_handler_commits_nothing_and_the_batch_comes_back(
    kafka_options: KafkaOptions, group_id: str, running, eventually, committed_offsets
) -> None:
    await topics.ensure_topics(kafka_options, TYPES)
    events = [started("run-a", n) for n in range(5)]
    async with EventPublisher(kafka_options) as publisher:
        await publisher.publish(events)

    attempts: list[list[str]] = []

    async def flaky(batch: Sequence[Event]) -> None:
        attempts.append([e.id for e in batch])
        if len(attempts) == 1:
            raise RuntimeError("database down")

    consumer = EventConsumer(
        kafka_options, group_id=group_id, event_types=TYPES, handler=flaky, retry_backoff_ms=50
    )
    async with running(consumer):
        await eventually(lambda: sum(len(a) for a in attempts[1:]) >= len(events))
    # The failed batch was retried in-process from its first offset.
    assert attempts[0] == [e.id for e in events][: len(attempts[0])]
    assert [i for a in attempts[1:] for i in a] == [e.id for e in events]

    # Committed once the retry succeeded: one partition (one key), five records.
    assert list((await committed_offsets(kafka_options, group_id, TYPES)).values()) == [len(events)]


async def test_uncommitted_batch_is_redelivered_after_restart(
    kafka_options: KafkaOptions, group_id: str, running, eventually, committed_offsets
) -> None:
    await topics.ensure_topics(kafka_options, TYPES)
    events = [started("run-b", n) for n in range(3)]
    async with EventPublisher(kafka_options) as publisher:
        await publisher.publish(events)

    calls = 0

    async def always_fails(batch: Sequence[Event]) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("bug")

    consumer = EventConsumer(
        kafka_options,
        group_id=group_id,
        event_types=TYPES,
        handler=always_fails,
        retry_backoff_ms=50,
    )
    async with running(consumer):
        await eventually(lambda: calls >= 2)  # retried in-process too
    assert await committed_offsets(kafka_options, group_id, TYPES) == {}

    # A new member of the group (after a restart) gets the batch again.
    collect = Collector()
    consumer = EventConsumer(kafka_options, group_id=group_id, event_types=TYPES, handler=collect)
    async with running(consumer):
        await eventually(lambda: len(collect.events) >= len(events))
    assert [e.id for e in collect.events] == [e.id for e in events]


async def test_malformed_records_are_skipped_and_committed_past(
    kafka_options: KafkaOptions, group_id: str, running, eventually, committed_offsets
) -> None:
    await topics.ensure_topics(kafka_options, TYPES)
    good = started("run-c", 1)
    record = good.to_record()
    topic = topics.TASK_STARTED.topic(kafka_options)
    unknown = [(n, v) for n, v in record.headers if n != "ce_type"]
    unknown.append(("ce_type", b"io.example.other.v1"))
    producer = AIOKafkaProducer(bootstrap_servers=kafka_options.kafka_bootstrap_servers)
    await producer.start()
    try:
        # Same key as the good event: same partition, in front of it.
        await producer.send_and_wait(topic, b"junk", key=record.key)  # no headers at all
        await producer.send_and_wait(topic, record.value, key=record.key, headers=unknown)
        await producer.send_and_wait(
            topic, b"\xff\xff\xff", key=record.key, headers=list(record.headers)
        )
    finally:
        await producer.stop()
    async with EventPublisher(kafka_options) as publisher:
        await publisher.publish([good])

    collect = Collector()
    consumer = EventConsumer(kafka_options, group_id=group_id, event_types=TYPES, handler=collect)
    async with running(consumer):
        await eventually(lambda: collect.events)
    assert collect.events == [good]

    # Committed past the poison records: three of them and the good event.
    assert list((await committed_offsets(kafka_options, group_id, TYPES)).values()) == [4]


async def test_two_members_of_a_group_split_the_partitions(
    kafka_options: KafkaOptions, group_id: str, running, eventually
) -> None:
    options = kafka_options.model_copy(update={"kafka_partitions": 4})
    await topics.ensure_topics(options, [topics.TASK_STARTED])
    all_partitions = {(topics.TASK_STARTED.topic(options), p) for p in range(4)}
    first, second = Collector(), Collector()
    a = EventConsumer(options, group_id=group_id, event_types=[topics.TASK_STARTED], handler=first)
    b = EventConsumer(options, group_id=group_id, event_types=[topics.TASK_STARTED], handler=second)

    def split() -> bool:
        one, two = a.assignment(), b.assignment()
        return bool(one) and bool(two) and not one & two and one | two == all_partitions

    async with running(a), running(b):
        await eventually(split)
        events = [started(f"run-{n}", n) for n in range(200)]
        async with EventPublisher(options) as publisher:
            await publisher.publish(events)
        await eventually(lambda: len(first.events) + len(second.events) >= len(events))
        await asyncio.sleep(0.2)  # let any duplicate show up before counting
        assert split()  # no rebalance happened while consuming

    ids = Counter(e.id for e in first.events + second.events)
    assert set(ids) == {e.id for e in events}
    assert set(ids.values()) == {1}
    assert first.events and second.events


async def test_a_member_is_told_when_its_partitions_change(
    kafka_options: KafkaOptions, group_id: str, running, eventually
) -> None:
    await topics.ensure_topics(kafka_options, [topics.TASK_STARTED])
    changes: list[frozenset[tuple[str, int]]] = []
    a = EventConsumer(
        kafka_options,
        group_id=group_id,
        event_types=[topics.TASK_STARTED],
        handler=Collector(),
        on_partitions_changed=lambda: changes.append(a.assignment()),
    )
    b = EventConsumer(
        kafka_options, group_id=group_id, event_types=[topics.TASK_STARTED], handler=Collector()
    )
    async with running(a):
        await eventually(lambda: len(a.assignment()) == kafka_options.kafka_partitions)
        told = len(changes)
        assert told >= 1  # given its partitions
        async with running(b):
            await eventually(lambda: b.assignment() and len(changes) > told)  # some went to b
            assert len(a.assignment()) < kafka_options.kafka_partitions
            await asyncio.sleep(0.1)  # b's loop runs before it is stopped


async def test_check_kafka(kafka_options: KafkaOptions) -> None:
    await check_kafka(kafka_options)

    dead = kafka_options.model_copy(update={"kafka_bootstrap_servers": "127.0.0.1:1"})
    began = time.monotonic()
    with pytest.raises((KafkaConnectionError, TimeoutError)):
        await check_kafka(dead, timeout_s=1.0)
    assert time.monotonic() - began < 2.0


async def test_publisher_must_be_started(kafka_options: KafkaOptions) -> None:
    publisher = EventPublisher(kafka_options)
    with pytest.raises(RuntimeError):
        await publisher.publish([started("run", 1)])
    await publisher.publish([])  # an empty batch is a no-op


async def test_stop_lets_the_batch_in_progress_finish_and_commit(
    kafka_options: KafkaOptions, group_id: str, eventually, committed_offsets
) -> None:
    await topics.ensure_topics(kafka_options, TYPES)
    events = [started("run-d", n) for n in range(3)]
    async with EventPublisher(kafka_options) as publisher:
        await publisher.publish(events)
    entered, release = asyncio.Event(), asyncio.Event()
    handled: list[Event] = []

    async def slow(batch: Sequence[Event]) -> None:
        entered.set()
        await release.wait()
        handled.extend(batch)

    consumer = EventConsumer(kafka_options, group_id=group_id, event_types=TYPES, handler=slow)
    await consumer.start()
    task = asyncio.create_task(consumer.run())
    await asyncio.wait_for(entered.wait(), timeout=20)
    stopping = asyncio.create_task(consumer.stop())
    await asyncio.sleep(0.05)
    assert not stopping.done()  # waiting for the handler
    release.set()
    await asyncio.wait_for(stopping, timeout=10)
    await task
    assert handled == events
    assert list((await committed_offsets(kafka_options, group_id, TYPES)).values()) == [3]


async def test_run_is_cancellable(kafka_options: KafkaOptions, group_id: str) -> None:
    await topics.ensure_topics(kafka_options, TYPES)
    consumer = EventConsumer(
        kafka_options, group_id=group_id, event_types=TYPES, handler=Collector()
    )
    async with consumer:
        task = asyncio.create_task(consumer.run())
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert consumer.assignment() == frozenset()
    with pytest.raises(RuntimeError, match="not started"):
        await consumer.run()


async def test_stop_waits_for_run_not_for_the_task_around_it(
    kafka_options: KafkaOptions, group_id: str
) -> None:
    await topics.ensure_topics(kafka_options, TYPES)
    consumer = EventConsumer(
        kafka_options, group_id=group_id, event_types=TYPES, handler=Collector()
    )
    await consumer.start()
    after_run = asyncio.Event()

    async def service_main() -> None:
        await consumer.run()
        after_run.set()
        await asyncio.Event().wait()  # the task goes on with other work

    task = asyncio.create_task(service_main())
    await asyncio.sleep(0.1)
    await asyncio.wait_for(consumer.stop(), timeout=5)
    await asyncio.wait_for(after_run.wait(), timeout=1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
