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

    Partitions taken away because the broker no longer knew this member (it restarted
    empty, or the session expired) are *lost*, not handed over: nothing is committed
    (:func:`~interlock.common.kafka.commit_if_member` refuses), and ``on_lost`` is
    called, for the worker to replace its client.

    Args:
        backlog: The attempts held.
        committer: Commits and tracks offsets.
        on_room: Called once the revoked partitions' attempts are gone.
        is_member: Whether the consumer is still a member of its group.
        on_lost: Called when partitions were lost.
    """

    def __init__(
        self,
        backlog: Backlog,
        committer: OffsetCommitter,
        on_room: Callable[[], None],
        *,
        is_member: Callable[[], bool],
        on_lost: Callable[[], None],
    ) -> None:
        self._backlog = backlog
        self._committer = committer
        self._on_room = on_room
        self._is_member = is_member
        self._on_lost = on_lost

    async def on_partitions_revoked(self, revoked: Any) -> None:
        partitions = set(revoked)
        if partitions and not self._is_member():
            _log.warning(
                "task partitions lost: the broker no longer knew this worker",
                extra={"partitions": len(partitions)},
            )
            self._on_lost()
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
