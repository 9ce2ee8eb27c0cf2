"""The retention collector and the orphan sweeper, in one background loop (a resource)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from interlock.artifact.service import ArtifactService
from interlock.common.resources import Lifecycle, check_background_task

_log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 10.0
"""How long stopping waits for a pass in progress."""


class Collector(Lifecycle):
    """Every ``interval_s``: delete expired artifacts, then sweep what uploads left behind.

    Any number of instances may run: rows are claimed with ``SKIP LOCKED``. A pass that
    fails (S3 or PostgreSQL away) is logged and the next one tries again; an object S3
    refuses to delete keeps its row and is retried, without holding up the others.

    Args:
        service: Does the work.
        interval_s: Time between passes.
        batch_size: Most artifacts one query claims.
    """

    name = "collector"

    def __init__(self, service: ArtifactService, *, interval_s: float, batch_size: int) -> None:
        self._service = service
        self._interval_s = interval_s
        self._batch_size = batch_size
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def pass_once(self) -> tuple[int, int]:
        """One pass: how many expired artifacts and orphans were removed."""
        expired = 0
        while True:
            deleted = await self._service.collect_expired(batch_size=self._batch_size)
            expired += deleted
            if deleted < self._batch_size:
                break
        orphans = await self._service.sweep_orphans(batch_size=self._batch_size)
        if expired or orphans:
            _log.info("collected artifacts", extra={"expired": expired, "orphans": orphans})
        return expired, orphans

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.pass_once()
            except Exception:
                _log.exception("collector pass failed; trying again next interval")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self._interval_s)

    async def start(self) -> None:
        """Start passing in the background."""
        if self._task is None:
            self._stopping.clear()
            self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Let a pass in progress finish (cancelled after ``STOP_TIMEOUT_S``), then stop.

        Cancelling a pass in the middle of a query would leave its connection busy, and
        the pool's close would wait for it.
        """
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=STOP_TIMEOUT_S)
        except TimeoutError:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def check(self) -> None:
        """Raise when the loop is not running."""
        check_background_task(self._task, self.name)
