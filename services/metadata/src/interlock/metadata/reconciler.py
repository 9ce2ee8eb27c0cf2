"""The reconciler: runs whose outcome event never arrived get it from the scheduler.

The broker may lose events (the local one keeps nothing across a restart). A run whose
document stays unfinished with no event for ``quiet_after`` is asked about through the
scheduler's ``TaskStateService.GetRun``; when the scheduler says it ended, the outcome
is folded into the document like any event (the same merge, so a late real event
changes nothing).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from pydantic import SecretStr

from interlock.common.grpc_tracing import traced_channel
from interlock.common.resources import Lifecycle
from interlock.common.service_credentials import credential_metadata
from interlock.common.statuses import ENDED_RUN, RunStatus
from interlock.metadata.domain import RunEnded, millis
from interlock.metadata.service import ExecutionService
from interlock.tasks.v1 import tasks_pb2, tasks_pb2_grpc

__all__ = ["Reconciler", "RunOutcome", "SchedulerRuns"]

_log = logging.getLogger(__name__)

RunOutcome = Callable[[str, str], Awaitable[tuple[RunStatus, datetime] | None]]
"""``(tenant, run id)`` → the run's end status and time, or ``None`` while it has not
ended (or the scheduler does not know it)."""


class SchedulerRuns(Lifecycle):
    """The scheduler's ``GetRun``, as a resource holding one channel.

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
        """Always ready: a scheduler that does not answer only delays reconciling."""

    async def outcome(self, tenant: str, run_id: str) -> tuple[RunStatus, datetime] | None:
        """The run's end, or ``None`` while it runs or when the scheduler does not know it.

        Raises:
            grpc.aio.AioRpcError: The call failed otherwise (the run is asked about again
                on a later pass).
        """
        request = tasks_pb2.GetRunRequest(tenant=tenant, run_id=run_id)
        try:
            run = await self._stub.GetRun(request, timeout=self._timeout_s, metadata=self._metadata)
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise
        status = RunStatus(tasks_pb2.RunStatus.Name(run.status).removeprefix("RUN_STATUS_").lower())
        if status not in ENDED_RUN:
            return None
        ended = (
            run.ended_at.ToDatetime(tzinfo=UTC) if run.HasField("ended_at") else datetime.now(UTC)
        )
        return status, ended


class Reconciler(Lifecycle):
    """Every ``interval_s``, checks quiet unfinished runs against the scheduler.

    Args:
        service: Finds quiet runs and applies outcomes.
        outcome: Asks the scheduler about one run.
        quiet_after: Silence after which an unfinished run is checked (and between two
            checks of one run).
        interval_s: Time between passes. Default: 30 s.
        batch_size: Most runs one pass checks. Default: 200.
        name: Name ``/readyz`` reports. Default: ``"reconciler"``.
    """

    def __init__(
        self,
        service: ExecutionService,
        outcome: RunOutcome,
        *,
        quiet_after: timedelta,
        interval_s: float = 30.0,
        batch_size: int = 200,
        name: str = "reconciler",
    ) -> None:
        self.name = name
        self._service = service
        self._outcome = outcome
        self._quiet_after = quiet_after
        self._interval_s = interval_s
        self._batch_size = batch_size
        self._task: asyncio.Task[None] | None = None

    async def pass_once(self) -> int:
        """One pass; returns how many runs got their outcome from the scheduler."""
        runs = await self._service.quiet_runs(quiet_for=self._quiet_after, limit=self._batch_size)
        facts, checked = [], []
        for tenant, run_id in runs:
            try:
                ended = await self._outcome(tenant, run_id)
            except grpc.aio.AioRpcError as error:
                _log.warning(
                    "cannot ask the scheduler about a run",
                    extra={"run_id": run_id, "code": str(error.code())},
                )
                continue
            checked.append(run_id)
            if ended is not None:
                status, at = ended
                facts.append(
                    RunEnded(
                        event_id=f"reconciled:{run_id}:{status.value}",
                        tenant=tenant,
                        run_id=run_id,
                        time=millis(at),
                        status=status,
                    )
                )
        if facts:
            await self._service.apply(facts)
            _log.info("run outcomes taken from the scheduler", extra={"runs": len(facts)})
        await self._service.mark_reconciled(checked)
        return len(facts)

    async def _run(self) -> None:
        while True:
            try:
                await self.pass_once()
            except Exception:
                _log.exception("reconciler pass failed; trying again next interval")
            await asyncio.sleep(self._interval_s)

    async def start(self) -> None:
        """Start passing in the background."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Stop passing."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def check(self) -> None:
        """Raise when the loop is not running."""
        if self._task is None or self._task.done():
            raise RuntimeError(f"{self.name} is not running")
