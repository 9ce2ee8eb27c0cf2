"""The scheduler's own state of a run, asked for by the views and their reconcilers.

The views built from events (the workflow service's run status, the metadata service's
execution documents) may miss events the broker lost. Their reconcilers ask the
scheduler, whose database is the truth, through ``TaskStateService.GetRun`` and
``ListRunTasks`` with the service's credential (it acts for no user), and fold the
answer into the view through the view's own order-independent merge. The workflow
service's run view also reads a run's tasks here whenever the run is read
(:meth:`SchedulerState.tasks`).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message
from pydantic import SecretStr

from interlock.common.grpc_tracing import traced_channel
from interlock.common.resources import Lifecycle
from interlock.common.service_credentials import credential_metadata
from interlock.common.statuses import RunStatus, TaskStatus
from interlock.tasks.v1 import tasks_pb2, tasks_pb2_grpc

__all__ = ["RunTruth", "ScheduledRun", "SchedulerState", "SchedulerTask", "ask_about"]

Answer = TypeVar("Answer")
RunId = TypeVar("RunId", str, uuid.UUID)

_log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class SchedulerTask:
    """One task as the scheduler holds it (its latest attempt)."""

    task_id: str
    status: TaskStatus
    attempt: int
    scheduled_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    output_json: bytes = b""
    error_type: str = ""
    error_message: str = ""
    error_retryable: bool = False
    error_traceback: str = ""
    reason: str = ""
    """Why a skipped or cancelled task will not run (the workflow service's run view)."""


@dataclass(frozen=True, kw_only=True)
class ScheduledRun:
    """One run as the scheduler holds it."""

    status: RunStatus
    ended_at: datetime | None
    tasks: tuple[SchedulerTask, ...]
    workflow: str = ""
    version: int = 0
    created_at: datetime | None = None


RunTruth = Callable[[str, str], Awaitable[ScheduledRun | None]]
"""``(tenant, run id)`` → the run as the scheduler holds it, or ``None`` when it does
not know it."""


async def ask_about(
    truth: RunTruth, runs: Iterable[tuple[str, RunId]]
) -> AsyncIterator[tuple[str, RunId, ScheduledRun | None]]:
    """Ask ``truth`` about each of ``runs`` in turn: ``(tenant, run id, its answer)``.

    A run the scheduler could not answer about (unavailable, deadline) is logged and left
    out, so that a reconciler passes over it and asks again on a later pass.
    """
    for tenant, run_id in runs:
        try:
            run = await truth(tenant, str(run_id))
        except grpc.aio.AioRpcError as error:
            _log.warning(
                "cannot ask the scheduler about a run",
                extra={"run_id": str(run_id), "code": str(error.code())},
            )
            continue
        yield tenant, run_id, run


class SchedulerState(Lifecycle):
    """The scheduler's ``GetRun`` and ``ListRunTasks``, as a resource holding one channel.

    Args:
        target: ``host:port`` of the scheduler's gRPC server.
        credential: This service's credential (``interlock.common.service_credentials``).
        timeout_s: Bound on one call. Default: 5 s.
        name: Name ``/readyz`` reports. Default: ``"scheduler"``.
    """

    def __init__(
        self, target: str, credential: SecretStr, *, timeout_s: float = 5.0, name: str = "scheduler"
    ) -> None:
        self.name = name
        self._target = target
        self._metadata = credential_metadata(credential)
        self._timeout_s = timeout_s
        self._channel: grpc.aio.Channel | None = None
        self._stub: Any = None

    async def start(self) -> None:
        """Create the channel (it connects on the first call)."""
        self._channel = traced_channel(self._target)
        self._stub = tasks_pb2_grpc.TaskStateServiceStub(self._channel)

    async def stop(self) -> None:
        """Close the channel."""
        channel, self._channel = self._channel, None
        if channel is not None:
            await channel.close(grace=None)

    async def check(self) -> None:
        """Always ready: a scheduler that does not answer fails only what asks it.

        Reconciling waits, and the reads that need it (the run view's tasks) fail; the
        service goes on.
        """

    async def tasks(self, tenant: str, run_id: str) -> tuple[SchedulerTask, ...] | None:
        """The run's tasks (one ``ListRunTasks``), or ``None`` for a run it does not know.

        The scheduler may not know a run yet: its start may still be on its way.

        Raises:
            grpc.aio.AioRpcError: The call failed otherwise.
        """
        listed = await _unless_not_found(
            self._stub.ListRunTasks(
                tasks_pb2.ListRunTasksRequest(tenant=tenant, run_id=run_id),
                timeout=self._timeout_s,
                metadata=self._metadata,
            )
        )
        if listed is None:
            return None
        return tuple(_task(task) for task in listed.tasks)

    async def run(self, tenant: str, run_id: str) -> ScheduledRun | None:
        """The run with its tasks, or ``None`` when the scheduler does not know it.

        Raises:
            grpc.aio.AioRpcError: The call failed otherwise (ask again later).
        """
        run = await _unless_not_found(
            self._stub.GetRun(
                tasks_pb2.GetRunRequest(tenant=tenant, run_id=run_id),
                timeout=self._timeout_s,
                metadata=self._metadata,
            )
        )
        if run is None:
            return None
        tasks = await self.tasks(tenant, run_id)
        if tasks is None:
            return None
        return ScheduledRun(
            status=RunStatus(
                tasks_pb2.RunStatus.Name(run.status).removeprefix("RUN_STATUS_").lower()
            ),
            ended_at=_time(run, "ended_at"),
            tasks=tasks,
            workflow=run.workflow_name,
            version=run.workflow_version,
            created_at=_time(run, "created_at"),
        )


async def _unless_not_found(call: Awaitable[Answer]) -> Answer | None:
    """``call``'s answer, or ``None`` where the scheduler does not know the run."""
    try:
        return await call
    except grpc.aio.AioRpcError as error:
        if error.code() == grpc.StatusCode.NOT_FOUND:
            return None
        raise


def _task(task: tasks_pb2.Task) -> SchedulerTask:
    return SchedulerTask(
        task_id=task.task_id,
        status=TaskStatus(
            tasks_pb2.TaskStatus.Name(task.status).removeprefix("TASK_STATUS_").lower()
        ),
        attempt=task.attempt,
        scheduled_at=_time(task, "scheduled_at"),
        started_at=_time(task, "started_at"),
        ended_at=_time(task, "ended_at"),
        output_json=task.output_json,
        error_type=task.error_type,
        error_message=task.error_message,
        error_retryable=task.error_retryable,
        error_traceback=task.error_traceback,
        reason=task.reason,
    )


def _time(message: Message, field: str) -> datetime | None:
    if not message.HasField(field):
        return None
    stamp: datetime = getattr(message, field).ToDatetime(tzinfo=UTC)
    return stamp
