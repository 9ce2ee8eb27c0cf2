"""The task-state gRPC service (``interlock.tasks.v1.TaskStateService``).

Every call carries the caller's identity token in its metadata
(``x-interlock-identity``: the token the gateway forwarded with the request the caller
is serving), and the tenant is the token's: a call without a valid one is
``UNAUTHENTICATED``, one naming another tenant in its request ``PERMISSION_DENIED``, and
a run of another tenant answers ``NOT_FOUND`` like an unknown one. ``WatchRun`` sends
the run's current tasks first, then every recorded transition (polling the transitions
log) until the run has ended.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import datetime
from types import TracebackType
from typing import Any, Self

import asyncpg
import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import SecretStr

from interlock.common.errors import InterlockError, grpc_code_name
from interlock.common.grpc_tracing import aio_server_interceptors
from interlock.common.identity import IdentityVerifier, InvalidIdentity
from interlock.common.service_credentials import is_valid_credential
from interlock.events.v1 import workflow_pb2
from interlock.scheduler.domain.states import ENDED_RUN, RunStatus, TaskStatus
from interlock.scheduler.service import SchedulerService
from interlock.tasks.v1 import tasks_pb2, tasks_pb2_grpc

Context = grpc.aio.ServicerContext[Any, Any]
_RunRequest = (
    tasks_pb2.GetRunRequest
    | tasks_pb2.ListRunTasksRequest
    | tasks_pb2.GetTaskStateRequest
    | tasks_pb2.WatchRunRequest
)

WATCH_POLL_S = 0.2
"""How often ``WatchRun`` looks for new transitions."""


def _timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def run_status(status: str) -> tasks_pb2.RunStatus.ValueType:
    """The proto enum of a stored run status."""
    return tasks_pb2.RunStatus.Value(f"RUN_STATUS_{status.upper()}")


_SETTLED = frozenset({TaskStatus.SKIPPED.value, TaskStatus.CANCELLED.value})
"""Statuses whose error fields hold why the scheduler settled the task (its ``reason``)."""


def task_message(row: asyncpg.Record) -> tasks_pb2.Task:
    """A task row as a ``Task`` message."""
    return tasks_pb2.Task(
        task_id=row["task_id"],
        status=tasks_pb2.TaskStatus.Value(f"TASK_STATUS_{row['status'].upper()}"),
        attempt=row["attempt"],
        scheduled_at=_timestamp(row["scheduled_at"]),
        started_at=_timestamp(row["started_at"]),
        ended_at=_timestamp(row["ended_at"]),
        output_json=row["output_json"] or b"",
        error_type=row["error_type"] or "",
        error_message=row["error_message"] or "",
        error_retryable=bool(row["error_retryable"]),
        error_traceback=row["error_traceback"] or "",
        reason=(row["error_message"] or "") if row["status"] in _SETTLED else "",
    )


def _run_message(row: asyncpg.Record) -> tasks_pb2.Run:
    started = workflow_pb2.WorkflowStarted()
    started.ParseFromString(row["started"])
    return tasks_pb2.Run(
        run_id=row["run_id"],
        workflow_name=started.workflow_name,
        workflow_version=started.workflow_version,
        status=run_status(row["status"]),
        created_at=_timestamp(row["created_at"]),
        ended_at=_timestamp(row["ended_at"]),
    )


class TaskStateServicer(tasks_pb2_grpc.TaskStateServiceServicer):
    """Answers task-state queries through the service's reads, for verified callers only."""

    def __init__(
        self,
        service: SchedulerService,
        identity: IdentityVerifier,
        service_credentials: SecretStr | None = None,
    ) -> None:
        self._service = service
        self._identity = identity
        self._service_credentials = service_credentials

    async def _tenant(self, request: _RunRequest, context: Context) -> str:
        """The caller's tenant, from the identity token in the call's metadata.

        A service presenting one of ``service_credentials`` instead asks for the tenant
        its request names (it acts for no user: the metadata service's reconciler).
        """
        metadata = context.invocation_metadata() or ()
        if (
            request.tenant
            and request.run_id
            and is_valid_credential(metadata, self._service_credentials)
        ):
            return request.tenant
        try:
            principal = await self._identity.verify_metadata(metadata)
        except InvalidIdentity:
            await context.abort(
                grpc.StatusCode.UNAUTHENTICATED, "a valid identity token is required"
            )
            raise  # abort raises; this keeps type checkers informed
        if request.tenant and request.tenant != principal.tenant:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, "not the caller's tenant")
        if not request.run_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "run_id is required")
        return principal.tenant

    async def GetRun(self, request: tasks_pb2.GetRunRequest, context: Context) -> tasks_pb2.Run:
        """The run's status and times."""
        tenant = await self._tenant(request, context)
        async with _answering(context):
            return _run_message(await self._service.get_run(tenant, request.run_id))

    async def ListRunTasks(
        self, request: tasks_pb2.ListRunTasksRequest, context: Context
    ) -> tasks_pb2.ListRunTasksResponse:
        """Every task of the run."""
        tenant = await self._tenant(request, context)
        async with _answering(context):
            rows = await self._service.list_run_tasks(tenant, request.run_id)
        return tasks_pb2.ListRunTasksResponse(tasks=[task_message(row) for row in rows])

    async def GetTaskState(
        self, request: tasks_pb2.GetTaskStateRequest, context: Context
    ) -> tasks_pb2.Task:
        """One task of the run."""
        if not request.task_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "task_id is required")
        tenant = await self._tenant(request, context)
        async with _answering(context):
            rows = await self._service.list_run_tasks(tenant, request.run_id, request.task_id)
        if not rows:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"task {request.task_id} not found")
        return task_message(rows[0])

    async def WatchRun(
        self, request: tasks_pb2.WatchRunRequest, context: Context
    ) -> AsyncIterator[tasks_pb2.RunChange]:
        """The run's tasks now, then every change until the run has ended."""
        tenant = await self._tenant(request, context)
        async with _answering(context):
            now, last_id = await self._service.run_snapshot(tenant, request.run_id)
        status = run_status(now.run["status"])
        for row in now.tasks:
            yield tasks_pb2.RunChange(run_status=status, task=task_message(row))
        ended = RunStatus(now.run["status"]) in ENDED_RUN
        while not ended:
            await asyncio.sleep(WATCH_POLL_S)
            async with _answering(context):
                changed = await self._service.run_changes(tenant, request.run_id, last_id)
            if changed is None:
                continue
            last_id = changed.transitions[-1]["id"]
            tasks = {row["task_id"]: row for row in changed.tasks}
            status = run_status(changed.run["status"])
            for change in changed.transitions:
                task_row = tasks.get(change["task_id"]) if change["task_id"] else None
                yield tasks_pb2.RunChange(
                    run_status=status,
                    task=task_message(task_row) if task_row is not None else None,
                    time=_timestamp(change["at"]),
                )
            ended = RunStatus(changed.run["status"]) in ENDED_RUN


@contextlib.asynccontextmanager
async def _answering(context: Context) -> AsyncIterator[None]:
    """Abort the call with the status code of an :class:`InterlockError` raised inside."""
    try:
        yield
    except InterlockError as error:
        await context.abort(grpc.StatusCode[grpc_code_name(error)], str(error))


class TaskStateServer:
    """The gRPC server as a resource, listening on ``<host>:<port>`` while open.

    Args:
        service: The scheduler's use cases (its database opened before this).
        identity: Verifies the identity token of every call.
        host: Address to bind. Default: ``"127.0.0.1"``.
        port: TCP port; 0 picks a free one (see :attr:`port`). Default: 9103.
        service_credentials: Credentials a service may present instead of an identity
            token (``SchedulerSettings.service_credentials``). Default: none.
        name: Name ``/readyz`` reports. Default: ``"grpc"``.
    """

    def __init__(
        self,
        service: SchedulerService,
        identity: IdentityVerifier,
        *,
        host: str = "127.0.0.1",
        port: int = 9103,
        service_credentials: SecretStr | None = None,
        name: str = "grpc",
    ) -> None:
        self.name = name
        self.host = host
        self.port = port
        self._service = service
        self._identity = identity
        self._service_credentials = service_credentials
        self._server: grpc.aio.Server | None = None

    async def __aenter__(self) -> Self:
        server = grpc.aio.server(interceptors=aio_server_interceptors())
        tasks_pb2_grpc.add_TaskStateServiceServicer_to_server(
            TaskStateServicer(self._service, self._identity, self._service_credentials), server
        )
        self.port = server.add_insecure_port(f"{self.host}:{self.port}")
        await server.start()
        self._server = server
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        server, self._server = self._server, None
        if server is not None:
            await server.stop(grace=2)

    async def check(self) -> None:
        """Raise when the server is not serving."""
        if self._server is None:
            raise RuntimeError(f"{self.name} is not serving")
