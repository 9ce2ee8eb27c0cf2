"""Runs whose events were lost get their state from the scheduler (GetRun, ListRunTasks)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import SecretStr

from interlock.common.testing import (
    StandInTaskState,
    app_client,
    identity_headers,
    serving_task_state,
)
from interlock.devstack import KafkaServer, MongoServer
from interlock.metadata import MetadataSettings, create_app
from interlock.tasks.v1 import tasks_pb2

from .conftest import RunEvents, eventually, metadata_settings, publish

pytestmark = pytest.mark.integration

TENANT = "acme"
CREDENTIAL = SecretStr("metadata-credential")
ENDED_AT = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def _stamp(at: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(at)
    return stamp


class StandInScheduler(StandInTaskState):
    """The scheduler's task-state answers, with runs that ended."""

    def ended(self, run_id: str, *tasks: tasks_pb2.Task, workflow: str = "quiet") -> None:
        run = tasks_pb2.Run(
            run_id=run_id,
            workflow_name=workflow,
            workflow_version=1,
            status=tasks_pb2.RUN_STATUS_SUCCEEDED,
            created_at=_stamp(ENDED_AT - timedelta(seconds=10)),
            ended_at=_stamp(ENDED_AT),
        )
        self.runs[run_id] = (run, list(tasks))


def succeeded(task_id: str, attempt: int = 1) -> tasks_pb2.Task:
    """A task the stand-in scheduler holds as succeeded."""
    return tasks_pb2.Task(
        task_id=task_id,
        status=tasks_pb2.TASK_STATUS_SUCCEEDED,
        attempt=attempt,
        scheduled_at=_stamp(ENDED_AT - timedelta(seconds=3)),
        started_at=_stamp(ENDED_AT - timedelta(seconds=2)),
        ended_at=_stamp(ENDED_AT - timedelta(seconds=1)),
    )


@pytest.fixture
async def scheduler() -> AsyncIterator[tuple[str, StandInScheduler]]:
    servicer = StandInScheduler(CREDENTIAL)  # type: ignore[abstract]  # what the reconciler asks
    async with serving_task_state(servicer) as target:
        yield target, servicer


@pytest.fixture
def reconciling(
    mongo_server: MongoServer, kafka_server: KafkaServer, scheduler: tuple[str, StandInScheduler]
) -> tuple[MetadataSettings, StandInScheduler]:
    """Settings whose reconciler asks the stand-in scheduler, passing fast; the stand-in."""
    target, stand_in = scheduler
    settings = metadata_settings(
        mongo_server.url,
        kafka_server,
        scheduler_grpc_target=target,
        service_credential=CREDENTIAL,
        reconcile_interval_s=0.2,
        reconcile_quiet_after_s=1.0,
    )
    return settings, stand_in


async def test_a_quiet_run_gets_its_outcome_from_the_scheduler(
    reconciling: tuple[MetadataSettings, StandInScheduler],
) -> None:
    settings, stand_in = reconciling
    start = datetime.now(UTC) - timedelta(minutes=5)
    lost = RunEvents(TENANT, "quiet", start=start).started({"a": "noop"}).attempt("a", 1, 1)
    unknown = RunEvents(TENANT, "quiet", start=start).started({"a": "noop"})
    stand_in.ended(lost.run_id, succeeded("a"))
    async with app_client(create_app(settings)) as client:
        client.headers.update(identity_headers(TENANT, roles=["viewer"]))
        await publish(settings, lost.events + unknown.events)

        async def status(run: RunEvents) -> str | None:
            answer = await client.get(f"/api/v1/executions/{run.run_id}")
            return str(answer.json()["status"]) if answer.status_code == 200 else None

        await eventually(lambda: _is(status(lost), "succeeded"))
        await eventually(lambda: unknown.run_id in stand_in.asked)
        document = (await client.get(f"/api/v1/executions/{lost.run_id}")).json()
        still = await status(unknown)
    assert document["finished_at"] == "2026-12-01T09:30:00.000Z"
    assert document["tasks"][0]["attempts"][0]["outcome"] == "succeeded"
    assert still == "pending"


async def test_lost_task_events_come_from_the_scheduler_and_a_late_one_changes_nothing(
    reconciling: tuple[MetadataSettings, StandInScheduler],
) -> None:
    settings, stand_in = reconciling
    start = datetime.now(UTC) - timedelta(minutes=5)
    # A finished fan-out: b's completion and all of c but its schedule were lost.
    fan_out = RunEvents(TENANT, "fan", start=start).started({"a": "noop", "b": "noop", "c": "noop"})
    fan_out.attempt("a", 1, 1).attempt("b", 1, 1).attempt("c", 1, 1).completed(3)
    late_completion = fan_out.events.pop(6)  # b's task.completed
    del fan_out.events[7:9]  # c's task.started and task.completed
    stand_in.ended(fan_out.run_id, succeeded("a"), succeeded("b"), succeeded("c"))
    # A finished run whose start and first task's events were all lost.
    orphan = RunEvents(TENANT, "orphan", start=start).started({"a": "noop", "b": "noop"})
    orphan.attempt("a", 1, 1).attempt("b", 1, 2).completed(3)
    del orphan.events[:4]
    stand_in.ended(orphan.run_id, succeeded("a"), succeeded("b"), workflow="orphan")
    # An unfinished run: its task's start was lost, the scheduler says it runs.
    running = RunEvents(TENANT, "busy", start=start).started({"a": "noop"}).attempt("a", 1, 1)
    del running.events[2:]
    stand_in.runs[running.run_id] = (
        tasks_pb2.Run(run_id=running.run_id, status=tasks_pb2.RUN_STATUS_RUNNING),
        [
            tasks_pb2.Task(
                task_id="a",
                status=tasks_pb2.TASK_STATUS_RUNNING,
                attempt=1,
                started_at=_stamp(start + timedelta(seconds=2)),
            )
        ],
    )
    async with app_client(create_app(settings)) as client:
        client.headers.update(identity_headers(TENANT, roles=["viewer"]))
        await publish(settings, fan_out.events + running.events + orphan.events)

        async def tasks(run: RunEvents) -> dict[str, str]:
            answer = await client.get(f"/api/v1/executions/{run.run_id}")
            if answer.status_code != 200:
                return {}
            return {task["id"]: task["status"] for task in answer.json()["tasks"]}

        await eventually(lambda: _is_map(tasks(fan_out), dict.fromkeys("abc", "succeeded")))
        await eventually(lambda: _is_map(tasks(running), {"a": "running"}))
        await eventually(lambda: _is_map(tasks(orphan), dict.fromkeys("ab", "succeeded")))
        adopted = (await client.get(f"/api/v1/executions/{orphan.run_id}")).json()
        converged = (await client.get(f"/api/v1/executions/{fan_out.run_id}")).json()
        await publish(settings, [late_completion])

        async def late_one_applied() -> bool:
            answer = await client.get(f"/api/v1/executions/{fan_out.run_id}")
            timeline = answer.json()["timeline"]
            return len(timeline) > len(converged["timeline"])

        await eventually(late_one_applied)
        after_late = (await client.get(f"/api/v1/executions/{fan_out.run_id}")).json()
        busy = (await client.get(f"/api/v1/executions/{running.run_id}")).json()
    assert converged["status"] == after_late["status"] == "succeeded"
    assert [t["status"] for t in after_late["tasks"]] == ["succeeded"] * 3
    assert (adopted["workflow"], adopted["status"]) == ("orphan", "succeeded")
    assert busy["status"] == "running"
    assert busy["tasks"][0]["attempts"][0]["started_at"] is not None


async def _is_map(value: Any, expected: dict[str, str]) -> bool:
    return bool(await value == expected)


async def _is(value: Any, expected: str) -> bool:
    return bool(await value == expected)
