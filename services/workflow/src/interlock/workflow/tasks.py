"""A run's tasks as the scheduler holds them (gRPC ``ListRunTasks``, thin).

``GET /api/v1/runs/{id}`` shows them: the scheduler keeps each task's state as the
truth, so the view asks it when a run is read instead of folding every task event.
"""

from __future__ import annotations

import logging

import grpc

from interlock.common.scheduler_state import SchedulerState, SchedulerTask
from interlock.workflow.domain import TasksUnavailableError

_log = logging.getLogger(__name__)


class SchedulerTasks:
    """Reads a run's tasks through ``scheduler`` (a :data:`~interlock.workflow.service.RunTasks`).

    Args:
        scheduler: The scheduler's task-state client, holding the service credential.
    """

    def __init__(self, scheduler: SchedulerState) -> None:
        self._scheduler = scheduler

    async def __call__(self, tenant: str, run_id: str) -> tuple[SchedulerTask, ...] | None:
        """The run's tasks, or ``None`` when the scheduler does not know the run (yet).

        Raises:
            TasksUnavailableError: The call failed (the scheduler is down, slow, or
                refused the credential).
        """
        try:
            return await self._scheduler.tasks(tenant, run_id)
        except grpc.aio.AioRpcError as error:
            _log.warning(
                "cannot read a run's tasks from the scheduler",
                extra={"run_id": run_id, "code": str(error.code())},
            )
            raise TasksUnavailableError(f"the scheduler answered {error.code()}") from error
