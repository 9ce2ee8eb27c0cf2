"""Rebalances: a revoked partition's progress is committed and its waiting attempts dropped."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from aiokafka.abc import ConsumerRebalanceListener

from interlock.worker.runtime._backlog import Backlog
from interlock.worker.runtime._commits import OffsetCommitter

_log = logging.getLogger(__name__)


class RebalanceListener(ConsumerRebalanceListener):  # type: ignore[misc]
    """Commits what a revoked partition finished, then forgets its waiting attempts.

    Running attempts go on: their outcomes are published anyway, and the partition's
    next owner runs again what stayed uncommitted (the scheduler drops duplicates).

    Args:
        backlog: The attempts held.
        committer: Commits and tracks offsets.
        on_room: Called once the revoked partitions' attempts are gone.
    """

    def __init__(
        self, backlog: Backlog, committer: OffsetCommitter, on_room: Callable[[], None]
    ) -> None:
        self._backlog = backlog
        self._committer = committer
        self._on_room = on_room

    async def on_partitions_revoked(self, revoked: Any) -> None:
        partitions = set(revoked)
        await self._committer.commit(partitions)
        for tp in partitions:
            self._backlog.drop_partition(tp)
        self._committer.forget(partitions)
        self._on_room()

    async def on_partitions_assigned(self, assigned: Any) -> None:
        _log.info(
            "task partitions assigned",
            extra={"partitions": sorted(tp.partition for tp in assigned)},
        )
