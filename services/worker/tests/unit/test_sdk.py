import asyncio
import json

import pytest

from interlock.worker.context import TaskContext
from interlock.worker.registry import TaskRegistry
from interlock.worker.sdk import ArtifactsUnavailable, current_context, task


def make_context() -> TaskContext:
    return TaskContext(
        tenant="t",
        run_id="r",
        task_id="a",
        attempt=2,
        task_type="python",
        idempotency_key="r/a/2",
        worker_id="w",
    )


def test_task_registers_and_refuses_a_second_function_under_one_name() -> None:
    @task("sdk.unit.double")
    def double(x: int) -> int:
        return x * 2

    assert double(2) == 4
    with pytest.raises(ValueError, match="already registered"):

        @task("sdk.unit.double")
        def other(x: int) -> int:
            return x


def test_registry_refuses_empty_names() -> None:
    with pytest.raises(ValueError, match="empty"):
        TaskRegistry().register("", print)


async def test_context_is_current_while_active_and_collects_heartbeats_and_lines() -> None:
    context = make_context()
    with pytest.raises(LookupError):
        current_context()
    token = context.activate()
    try:
        current = current_context()
        current.heartbeat({"rows": 3})
        current.logger.info("hello %s", "world")
        await asyncio.to_thread(current.logger.warning, "from a thread")
    finally:
        token.var.reset(token)
    assert json.loads(context.heartbeat_details) == {"rows": 3}
    lines = context.logger.drain()
    assert [(line.level, line.message) for line in lines] == [
        ("INFO", "hello world"),
        ("WARNING", "from a thread"),
    ]
    assert context.logger.drain() == []
    assert not context.aborted
    context.abort()
    assert context.aborted


async def test_default_artifact_store_says_it_is_unavailable() -> None:
    with pytest.raises(ArtifactsUnavailable):
        await make_context().artifacts.upload("report.csv", b"a,b")
