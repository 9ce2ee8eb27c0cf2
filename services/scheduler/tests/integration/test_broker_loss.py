"""The broker restarts empty mid-run: the reconciler re-publishes, runs still finish."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from interlock.common import topics
from interlock.devstack import _servers
from interlock.devstack._process import LOOPBACK, free_ports
from interlock.devstack._runner import RunningServer, start_server
from interlock.events.v1 import definition_pb2

from .conftest import make_settings, running_scheduler, running_worker, task

pytestmark = pytest.mark.integration


class PrivateKafka:
    """A Tansu broker (memory storage) this test may kill and restart empty."""

    def __init__(self, base: Path) -> None:
        (self.port,) = free_ports(1)
        self._base = base
        self._server: RunningServer | None = None
        self._starts = 0

    @property
    def bootstrap_servers(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def start(self) -> None:
        self._starts += 1
        log = self._base / f"kafka-{self._starts}.log"
        self._server = start_server(_servers.kafka_spec(port=self.port), log_path=log)

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(graceful=False)
            self._server = None


@pytest.fixture
def private_kafka(tmp_path: Path) -> Iterator[PrivateKafka]:
    kafka = PrivateKafka(tmp_path)
    kafka.start()
    try:
        yield kafka
    finally:
        kafka.stop()


async def test_runs_finish_after_the_broker_lost_everything(
    request: pytest.FixtureRequest, private_kafka: PrivateKafka
) -> None:
    settings = make_settings(
        request,
        kafka_bootstrap_servers=private_kafka.bootstrap_servers,
        reconcile_after_s=1.0,
        reconcile_interval_s=0.5,
        topics_check_interval_s=1.0,
    )
    async with running_scheduler(settings), running_worker(settings) as worker:
        run_id = await worker.start_run(task("a"), task("b", "a"), task("c", "b"))
        await worker.wait_for(lambda: worker.scheduled(run_id))
        # Everything in the broker is gone: a's task.scheduled, offsets, topics.
        await asyncio.to_thread(private_kafka.stop)
        await asyncio.to_thread(private_kafka.start)
        worker.behavior = lambda s: ("complete", {})
        outcome = await worker.wait_outcome(run_id, timeout_s=120)
    assert outcome.type == topics.WORKFLOW_COMPLETED
    assert {task_id for task_id, _ in worker.scheduled(run_id)} == {"a", "b", "c"}


async def test_a_result_lost_with_the_broker_is_recovered_without_any_timeout_set(
    request: pytest.FixtureRequest, private_kafka: PrivateKafka
) -> None:
    """As a user writes it: no timeout, no heartbeat timeout, no retries (issue 22)."""
    settings = make_settings(
        request,
        kafka_bootstrap_servers=private_kafka.bootstrap_servers,
        reconcile_after_s=1.0,
        reconcile_interval_s=0.5,
        topics_check_interval_s=1.0,
        lost_attempt_after_s=3.0,
    )
    once = definition_pb2.RetryPolicy(max_attempts=1)
    async with running_scheduler(settings), running_worker(settings) as worker:
        run_id = await worker.start_run(task("a", retry=once), task("b", "a", retry=once))
        await worker.wait_for(lambda: worker.scheduled(run_id))
        # A worker took the attempt; its result is lost with everything in the broker.
        await worker.publish(run_id, worker.answer_started("a", 1))
        await asyncio.sleep(1.0)
        await asyncio.to_thread(private_kafka.stop)
        await asyncio.to_thread(private_kafka.start)
        worker.behavior = lambda s: ("complete", {})
        outcome = await worker.wait_outcome(run_id, timeout_s=120)
    assert outcome.type == topics.WORKFLOW_COMPLETED
    # The same attempt went out again (same idempotency key): no new attempt, no retry.
    assert {attempt for task_id, attempt in worker.scheduled(run_id) if task_id == "a"} == {1}
    keys = {s.idempotency_key for s in worker.of(run_id, topics.TASK_SCHEDULED)}
    assert f"{run_id}:a:1" in keys
