"""How many tasks may run at once: per worker and per task type."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

__all__ = ["Slots"]


class Slots:
    """Counts running tasks against the worker's and each type's limit.

    Args:
        total: Most tasks running at once.
        per_type: Most tasks of a type running at once; unlisted types share
            ``total`` only.
    """

    def __init__(self, total: int, per_type: Mapping[str, int]) -> None:
        self._total = total
        self._per_type = dict(per_type)
        self._running: Counter[str] = Counter()
        self._count = 0

    @property
    def running(self) -> int:
        """Tasks running now."""
        return self._count

    @property
    def full(self) -> bool:
        """Whether no task of any type may start."""
        return self._count >= self._total

    def running_of(self, task_type: str) -> int:
        """Tasks of ``task_type`` running now."""
        return self._running[task_type]

    def can_start(self, task_type: str) -> bool:
        """Whether a task of ``task_type`` may start now."""
        if self._count >= self._total:
            return False
        limit = self._per_type.get(task_type)
        return limit is None or self._running[task_type] < limit

    def acquire(self, task_type: str) -> None:
        """Count a task of ``task_type`` as running (call after :meth:`can_start`)."""
        self._running[task_type] += 1
        self._count += 1

    def release(self, task_type: str) -> None:
        """Count a task of ``task_type`` as finished."""
        self._running[task_type] -= 1
        if self._running[task_type] <= 0:
            del self._running[task_type]
        self._count -= 1
