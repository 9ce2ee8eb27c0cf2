import asyncio
import functools
from collections.abc import Sequence
from typing import Any

from aiokafka.errors import MessageSizeTooLargeError

from interlock.common import topics
from interlock.common.errors import PublishError
from interlock.common.events import Event
from interlock.events.v1 import task_pb2
from interlock.worker.reporter import Reporter


def heartbeat(n: int, task_id: str = "") -> Event[task_pb2.TaskHeartbeat]:
    return Event(
        type=topics.TASK_HEARTBEAT,
        payload=task_pb2.TaskHeartbeat(task_id=task_id or f"t{n}", attempt=1, worker_id="w"),
        tenant="t",
        run_id="r",
        source="worker",
    )


class SlowBroker:
    """Acknowledges each publish call after the test releases it; can refuse once."""

    def __init__(self, *, refuse_first: bool = False) -> None:
        self.calls: list[list[str]] = []
        self.release = asyncio.Event()
        self.called = asyncio.Event()
        self._refuse = refuse_first

    async def publish(self, events: Sequence[Event[Any]]) -> None:
        self.calls.append([e.payload.task_id for e in events])
        self.called.set()
        await self.release.wait()
        if self._refuse:
            self._refuse = False
            raise ConnectionError("broker unavailable")


async def first_call(broker: SlowBroker) -> None:
    await asyncio.wait_for(broker.called.wait(), timeout=5)


async def test_events_emitted_during_a_publish_go_out_together_in_order() -> None:
    broker = SlowBroker()
    reporter = Reporter(broker.publish, max_batch=3)
    acked: list[int] = []
    reporter.start()
    try:
        reporter.emit([heartbeat(0)], on_published=lambda: acked.append(0))
        await first_call(broker)
        for n in range(1, 6):
            reporter.emit([heartbeat(n)], on_published=functools.partial(acked.append, n))
        assert acked == []
        broker.release.set()
        assert await reporter.flush(timeout_s=5)
    finally:
        await reporter.stop()
    assert broker.calls == [["t0"], ["t1", "t2", "t3"], ["t4", "t5"]]
    assert acked == [0, 1, 2, 3, 4, 5]


async def test_a_failed_publish_is_retried_before_anything_newer() -> None:
    broker = SlowBroker(refuse_first=True)
    reporter = Reporter(broker.publish, retry_backoff_ms=1)
    acked: list[int] = []
    reporter.start()
    try:
        reporter.emit([heartbeat(0), heartbeat(1)], on_published=lambda: acked.append(1))
        await first_call(broker)
        reporter.emit([heartbeat(2)], on_published=lambda: acked.append(2))
        broker.release.set()
        assert await reporter.flush(timeout_s=5)
    finally:
        await reporter.stop()
    assert broker.calls[0] == ["t0", "t1"]
    assert broker.calls[1][:2] == ["t0", "t1"]
    assert acked == [1, 2]


async def test_an_outage_is_told_once_and_what_it_emits_goes_out_after_the_retried_batch() -> None:
    broker = SlowBroker(refuse_first=True)
    outages: list[int] = []
    reporter: Reporter

    def on_outage() -> None:
        outages.append(1)
        reporter.emit([heartbeat(7)])

    reporter = Reporter(broker.publish, retry_backoff_ms=1, on_outage=on_outage)
    reporter.start()
    try:
        reporter.emit([heartbeat(0)])
        await first_call(broker)
        broker.release.set()
        assert await reporter.flush(timeout_s=5)
    finally:
        await reporter.stop()
    assert outages == [1]
    assert broker.calls == [["t0"], ["t0", "t7"]]


class SizeLimitedBroker:
    """Refuses, like Kafka, any batch holding a record it can never take."""

    def __init__(self) -> None:
        self.published: list[str] = []

    async def publish(self, events: Sequence[Event[Any]]) -> None:
        if any(e.payload.task_id == "too-big" for e in events):
            raise PublishError(failed=1, total=len(events)) from MessageSizeTooLargeError()
        self.published += [e.payload.task_id for e in events]


async def test_an_event_the_broker_can_never_take_is_parked_and_the_rest_go_out() -> None:
    broker = SizeLimitedBroker()
    reporter = Reporter(broker.publish)
    acked: list[int] = []
    reporter.start()
    try:
        for n in (0, 1):
            reporter.emit([heartbeat(n)], on_published=functools.partial(acked.append, n))
        big = heartbeat(9, task_id="too-big")
        reporter.emit([big], on_published=lambda: acked.append(9))
        reporter.emit([heartbeat(2)], on_published=lambda: acked.append(2))
        assert await reporter.flush(timeout_s=5)  # before: retried forever
    finally:
        await reporter.stop()
    assert broker.published == ["t0", "t1", "t2"]
    assert acked == [0, 1, 9, 2]
