"""Per task type metric series, looked up once per type instead of at every task."""

from __future__ import annotations

from collections.abc import Container

from prometheus_client import Counter, Histogram

from interlock.worker.metrics import QUEUE_WAIT, TASK_DURATION, TASKS_FINISHED, TASKS_RUNNING


class TypeMetrics:
    """One task type's metric series."""

    def __init__(self, label: str) -> None:
        self.running = TASKS_RUNNING.labels(label)
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

    def of(self, task_type: str) -> TypeMetrics:
        """The series of ``task_type``."""
        # Types come from events: only known ones become labels, to bound cardinality.
        label = task_type if task_type in self._known else "unknown"
        metrics = self._metrics.get(label)
        if metrics is None:
            metrics = self._metrics[label] = TypeMetrics(label)
        return metrics
