"""The retention collector and the orphan sweeper, in one background loop (a resource)."""

from __future__ import annotations

import logging

from interlock.artifact.service import ArtifactService
from interlock.common.resources import PeriodicPasses

_log = logging.getLogger(__name__)


class Collector(PeriodicPasses):
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
        super().__init__(interval_s=interval_s)
        self._service = service
        self._batch_size = batch_size

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
