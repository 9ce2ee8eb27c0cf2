"""Per task type metric series, looked up once per type instead of at every task."""

from __future__ import annotations

from collections.abc import Container

from prometheus_client import Counter, Gauge, Histogram

from interlock.worker.metrics import QUEUE_WAIT, TASK_DURATION, TASKS_FINISHED, TASKS_RUNNING

DEFAULT_QUEUE_LABEL = "default"
"""The ``queue`` label of the default queue (whose name is empty)."""


class TypeMetrics:
    """One task type's metric series."""

    def __init__(self, label: str) -> None:
        self.queue_wait = QUEUE_WAIT.labels(label)
        self._label = label
        self._finished: dict[str, tuple[Counter, Histogram]] = {}

    def finished(self, outcome: str) -> tuple[Counter, Histogram]:
        """The counter and duration of attempts of this type that ended with ``outcome``."""
        series = self._finished.get(outcome)
        if series is None:
            series = self._finished[outcome] = (
                TASKS_FINISHED.labels(self._label, outcome),
                TASK_DURATION.labels(self._label, outcome),
            )
        return series


class MetricsByType:
    """The series of each task type; types without an executor share ``unknown``.

    Args:
        known: The task types this worker has executors for.
    """

    def __init__(self, known: Container[str]) -> None:
        self._known = known
        self._metrics: dict[str, TypeMetrics] = {}
        self._running: dict[tuple[str, str], Gauge] = {}

    def of(self, task_type: str) -> TypeMetrics:
        """The series of ``task_type``."""
        label = self._label(task_type)
        metrics = self._metrics.get(label)
        if metrics is None:
            metrics = self._metrics[label] = TypeMetrics(label)
        return metrics

    def running(self, task_type: str, queue: str) -> Gauge:
        """The gauge of ``task_type``'s attempts running for ``queue`` (``""``: the default).

        Queues are bounded by what this worker serves: it receives no other queue's tasks.
        """
        key = (self._label(task_type), queue or DEFAULT_QUEUE_LABEL)
        gauge = self._running.get(key)
        if gauge is None:
            gauge = self._running[key] = TASKS_RUNNING.labels(*key)
        return gauge

    def _label(self, task_type: str) -> str:
        # Types come from events: only known ones become labels, to bound cardinality.
        return task_type if task_type in self._known else "unknown"
