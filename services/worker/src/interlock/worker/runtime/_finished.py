"""The outcomes of the attempts a worker finished last, to answer copies of them."""

from __future__ import annotations

from collections import OrderedDict

from interlock.common.events import Event
from interlock.events.v1 import task_pb2
from interlock.worker.attempts import AttemptKey

MAX_OUTPUT_BYTES = 64 * 1024 * 1024
"""Most output bytes the remembered outcomes may hold together."""


class FinishedAttempts:
    """A bounded memory of finished attempts' outcomes, oldest forgotten first.

    A copy of an attempt this worker just ran (re-sent by the scheduler's reconciler, or
    a redelivered record) gets that outcome once more instead of a second run; the
    scheduler drops whichever outcome arrives second.

    Args:
        limit: Most attempts remembered (0 remembers none).
        max_output_bytes: Most output bytes remembered. Default: :data:`MAX_OUTPUT_BYTES`.
    """

    def __init__(self, limit: int, *, max_output_bytes: int = MAX_OUTPUT_BYTES) -> None:
        self._limit = limit
        self._max_output_bytes = max_output_bytes
        self._outcomes: OrderedDict[AttemptKey, Event] = OrderedDict()
        self._output_bytes = 0

    def get(self, key: AttemptKey) -> Event | None:
        """The outcome of attempt ``key`` if it finished here lately."""
        return self._outcomes.get(key)

    def remember(self, key: AttemptKey, outcome: Event) -> None:
        """Keep ``outcome`` of attempt ``key``, forgetting the oldest beyond the bounds."""
        previous = self._outcomes.pop(key, None)
        if previous is not None:
            self._output_bytes -= _output_size(previous)
        self._outcomes[key] = outcome
        self._output_bytes += _output_size(outcome)
        while self._outcomes and (
            len(self._outcomes) > self._limit or self._output_bytes > self._max_output_bytes
        ):
            _, dropped = self._outcomes.popitem(last=False)
            self._output_bytes -= _output_size(dropped)


def _output_size(outcome: Event) -> int:
    payload = outcome.payload
    return len(payload.output_json) if isinstance(payload, task_pb2.TaskCompleted) else 0
