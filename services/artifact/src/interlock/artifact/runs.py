"""Whether a run exists in a tenant: the scheduler's answer (gRPC ``GetRun``).

The scheduler holds every run the platform executes (the workflow service's runs reach
it through ``workflow.started``), and answers for the caller's tenant only: the call
carries the caller's own identity token, so a run of another tenant is ``NOT_FOUND``
exactly like an unknown one. A run started a moment ago may not be known yet.
"""

from __future__ import annotations

import grpc

from interlock.artifact.domain import DependencyUnavailableError, RunNotFoundError
from interlock.artifact.settings import ArtifactSettings
from interlock.common.grpc_tracing import traced_channel
from interlock.common.identity import IDENTITY_METADATA
from interlock.common.resources import Lifecycle
from interlock.tasks.v1 import tasks_pb2, tasks_pb2_grpc

__all__ = ["RunDirectory"]

_NOT_FOUND = frozenset({grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED})


class RunDirectory(Lifecycle):
    """Asks the scheduler about runs, on behalf of the caller."""

    name = "scheduler"

    def __init__(self, settings: ArtifactSettings) -> None:
        self._target = settings.scheduler_grpc_target
        self._timeout_s = settings.scheduler_timeout_ms / 1000
        self._channel: grpc.aio.Channel | None = None

    async def start(self) -> None:
        """Open the channel (it connects on first use)."""
        self._channel = traced_channel(self._target)

    async def stop(self) -> None:
        """Close the channel."""
        channel, self._channel = self._channel, None
        if channel is not None:
            await channel.close(grace=None)

    async def check(self) -> None:
        """Always ready: uploads wait for the scheduler, nothing else does."""

    async def require(self, run_id: str, identity_token: str) -> None:
        """Return when the caller's tenant has run ``run_id``.

        Raises:
            RunNotFoundError: It has not (404).
            DependencyUnavailableError: The scheduler did not answer (503).
        """
        assert self._channel is not None, "RunDirectory used before start()"
        try:
            await tasks_pb2_grpc.TaskStateServiceStub(self._channel).GetRun(
                tasks_pb2.GetRunRequest(run_id=run_id),
                timeout=self._timeout_s,
                metadata=((IDENTITY_METADATA, identity_token),),
            )
        except grpc.aio.AioRpcError as error:
            if error.code() in _NOT_FOUND:
                raise RunNotFoundError(f"no run {run_id} in this tenant") from None
            raise DependencyUnavailableError(
                f"the scheduler did not say whether the run exists: {error.code().name}"
            ) from None
