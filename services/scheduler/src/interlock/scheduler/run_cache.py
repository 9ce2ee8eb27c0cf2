"""Runs kept in memory between consumed batches, valid while their stored version matches.

Loading a run means reading every one of its task rows; a run whose events keep
arriving at the same scheduler (its events share a partition) would be read again for
each of them. Every write of a run (:func:`interlock.scheduler.store.save_runs`, from
any process) gives it a new random ``version``, so a kept run whose version still
equals the stored one is exactly what is stored and its rows need not be read again.

A kept run is the same object the next batch applies events to: whoever uses the
cache must :meth:`RunCache.forget` the runs of a batch that did not commit.
"""

from __future__ import annotations

from collections.abc import Iterable

from cachetools import LRUCache

from interlock.scheduler.domain.run import RunState
from interlock.scheduler.domain.states import RunStatus

__all__ = ["RunCache"]

_OPEN = frozenset({RunStatus.PENDING, RunStatus.RUNNING, RunStatus.PAUSED})


class RunCache:
    """The most recently used open runs, each with the stored version it matches.

    Args:
        capacity: Most runs kept; the least recently used go first. Default: 2,000.
    """

    def __init__(self, capacity: int = 2_000) -> None:
        self._runs: LRUCache[str, tuple[int, RunState]] = LRUCache(maxsize=capacity)

    def __len__(self) -> int:
        return len(self._runs)

    def get(self, run_id: str, version: int) -> RunState | None:
        """The kept run if it matches the stored ``version``; else ``None`` (and forgets it)."""
        kept = self._runs.get(run_id)
        if kept is None:
            return None
        if kept[0] != version:
            del self._runs[run_id]
            return None
        return kept[1]

    def put(self, run_id: str, version: int, run: RunState) -> None:
        """Keep ``run`` as stored with ``version``; a finished run is forgotten instead."""
        if run.status in _OPEN:
            self._runs[run_id] = (version, run)
        else:
            self._runs.pop(run_id, None)

    def forget(self, run_ids: Iterable[str]) -> None:
        """Drop these runs (e.g. a batch applied to them rolled back)."""
        for run_id in run_ids:
            self._runs.pop(run_id, None)
