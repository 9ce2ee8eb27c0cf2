"""The reconciler: re-publishes run starts the broker may have lost (a resource)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from interlock.common.resources import Lifecycle
from interlock.workflow.service import WorkflowService

_log = logging.getLogger(__name__)


class StartReconciler(Lifecycle):
    """Every ``interval_s``, re-publishes workflow.started for runs stuck in pending.

    Any number of instances may run: each pass claims runs with ``SKIP LOCKED``. Each
    pass also prunes the projection's inbox of ids older than ``inbox_retention_s``.

    Args:
        service: Does the work (:meth:`WorkflowService.republish_stalled_starts`).
        interval_s: Time between passes. Default: 15 s.
        grace_s: How long a run may stay pending before its start is re-published;
            doubles after each re-publish. Default: 60 s.
        max_republishes: Re-publishes per run at most. Default: 5.
        batch_size: Most runs one pass re-publishes. Default: 500.
        inbox_retention_s: Age after which applied event ids are forgotten; longer
            than any redelivery. Default: 7 days.
        name: Name ``/readyz`` reports. Default: ``"reconciler"``.
    """

    def __init__(
        self,
        service: WorkflowService,
        *,
        interval_s: float = 15.0,
        grace_s: float = 60.0,
        max_republishes: int = 5,
        batch_size: int = 500,
        inbox_retention_s: float = 7 * 86_400,
        name: str = "reconciler",
    ) -> None:
        self.name = name
        self._service = service
        self._interval_s = interval_s
        self._grace_s = grace_s
        self._max_republishes = max_republishes
        self._batch_size = batch_size
        self._inbox_retention_s = inbox_retention_s
        self._task: asyncio.Task[None] | None = None

    async def pass_once(self) -> int:
        """One pass; returns how many runs were re-published."""
        count = await self._service.republish_stalled_starts(
            grace_s=self._grace_s,
            max_republishes=self._max_republishes,
            batch_size=self._batch_size,
        )
        if count:
            _log.info("re-published stalled run starts", extra={"runs": count})
        return count

    async def _run(self) -> None:
        while True:
            try:
                while await self.pass_once() >= self._batch_size:
                    pass
                await self._service.prune_inbox(older_than_s=self._inbox_retention_s)
            except Exception:
                _log.exception("reconciler pass failed; trying again next interval")
            await asyncio.sleep(self._interval_s)

    async def start(self) -> None:
        """Start passing in the background."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Stop passing (a pass in progress is rolled back)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def check(self) -> None:
        """Raise when the loop is not running."""
        if self._task is None or self._task.done():
            raise RuntimeError(f"{self.name} is not running")
