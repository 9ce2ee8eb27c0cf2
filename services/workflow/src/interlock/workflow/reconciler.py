"""The reconcilers (resources): what the broker may have lost, made good.

:class:`StartReconciler` re-publishes run starts; :class:`ViewReconciler` brings run
statuses whose run events were lost to the scheduler's.
"""

from __future__ import annotations

import logging

from interlock.common.resources import PeriodicPasses
from interlock.common.scheduler_state import RunTruth, ask_about
from interlock.workflow.service import WorkflowService

_log = logging.getLogger(__name__)


class StartReconciler(PeriodicPasses):
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
        super().__init__(interval_s=interval_s)
        self.name = name
        self._service = service
        self._grace_s = grace_s
        self._max_republishes = max_republishes
        self._batch_size = batch_size
        self._inbox_retention_s = inbox_retention_s

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

    async def run_pass(self) -> None:
        """Re-publish until a batch comes back short, then prune the inbox."""
        while await self.pass_once() >= self._batch_size:
            pass
        await self._service.prune_inbox(older_than_s=self._inbox_retention_s)


class ViewReconciler(PeriodicPasses):
    """Every ``interval_s``, brings run statuses that may lack lost run events to the scheduler's.

    A run is asked about when it is unfinished and has not changed for ``quiet_s``
    (again at most every ``quiet_s``); the scheduler's status is folded in as its run
    events would have been (:meth:`WorkflowService.fold_scheduler_status`). Tasks need
    no repair: the view reads them from the scheduler. Any number of instances may run:
    each pass claims runs with ``SKIP LOCKED``.

    Args:
        service: Claims runs and folds answers in.
        truth: Asks the scheduler about one run.
        quiet_s: Silence after which a run is checked.
        interval_s: Time between passes. Default: 30 s.
        batch_size: Most runs one pass asks about. Default: 200.
        name: Name ``/readyz`` reports. Default: ``"view-reconciler"``.
    """

    def __init__(
        self,
        service: WorkflowService,
        truth: RunTruth,
        *,
        quiet_s: float,
        interval_s: float = 30.0,
        batch_size: int = 200,
        name: str = "view-reconciler",
    ) -> None:
        super().__init__(interval_s=interval_s)
        self.name = name
        self._service = service
        self._truth = truth
        self._quiet_s = quiet_s
        self._batch_size = batch_size

    async def pass_once(self) -> int:
        """One pass; returns how many runs changed."""
        runs = await self._service.claim_quiet_runs(quiet_s=self._quiet_s, limit=self._batch_size)
        changed = 0
        async for tenant, run_id, truth in ask_about(self._truth, runs):
            if truth is not None:
                changed += await self._service.fold_scheduler_status(
                    tenant, run_id, status=truth.status, ended_at=truth.ended_at
                )
        if changed:
            _log.info("run statuses brought to the scheduler's", extra={"runs": changed})
        return changed
