"""Log lines already published, kept a while so that lines the broker lost can be re-sent.

The local broker keeps nothing across a restart: ``task.log`` events it acknowledged
and lost before the metadata service consumed them would be gone for good. The
metadata service notices the gap once an attempt's last event (``last_seq``) arrives
and publishes ``task.log_missing`` naming this worker; :meth:`SentLogs.answer` gives
back the events to publish again: the same lines with the same ``seq``, which the
metadata service stores once.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from interlock.common import topics
from interlock.common.events import Event
from interlock.events.v1 import task_pb2
from interlock.worker.attempts import AttemptKey

__all__ = ["SentLogs"]

_EVERYTHING = ((1, 2**63 - 1),)

SeqRanges = Sequence[tuple[int, int]]
"""Inclusive ``(first, last)`` ranges of ``seq``."""


@dataclass(slots=True)
class _Kept:
    key: AttemptKey
    event: Event[task_pb2.TaskLog]
    size: int
    kept_at: float


class SentLogs:
    """The ``task.log`` events this worker published lately, within a byte budget.

    Events are dropped oldest first once they are older than ``max_age_s`` or their
    total size passes ``max_bytes``: a worker that has forgotten lines cannot re-send
    them, and the metadata service then says in the log how many were lost.

    Args:
        worker_id: This worker's id: only requests naming it are answered.
        max_bytes: Most bytes kept (encoded payload sizes); 0 keeps nothing.
        max_age_s: Longest time an event is kept.
        clock: Monotonic seconds. Default: :func:`time.monotonic`.
    """

    def __init__(
        self,
        *,
        worker_id: str,
        max_bytes: int,
        max_age_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._worker_id = worker_id
        self._max_bytes = max_bytes
        self._max_age_s = max_age_s
        self._clock = clock
        self._kept: deque[_Kept] = deque()
        self._by_attempt: dict[AttemptKey, deque[_Kept]] = {}
        self._bytes = 0

    @property
    def size(self) -> int:
        """Bytes kept."""
        return self._bytes

    def keep(self, key: AttemptKey, event: Event[task_pb2.TaskLog]) -> None:
        """Remember a published ``task.log`` of attempt ``key``; forget what is past the bounds."""
        now = self._clock()
        kept = _Kept(key, event, event.payload.ByteSize(), now)
        if kept.size > self._max_bytes:
            return
        self._kept.append(kept)
        self._by_attempt.setdefault(key, deque()).append(kept)
        self._bytes += kept.size
        self._forget(now)

    def answer(self, request: Event[task_pb2.TaskLogMissing]) -> list[Event[task_pb2.TaskLog]]:
        """The events to publish for a ``task.log_missing``: none unless it names this worker."""
        missing = request.payload
        if missing.worker_id != self._worker_id:
            return []
        key = (request.run_id, missing.task_id, missing.attempt)
        return self.again(key, [(r.first, r.last) for r in missing.missing])

    def again(
        self, key: AttemptKey, missing: SeqRanges = _EVERYTHING
    ) -> list[Event[task_pb2.TaskLog]]:
        """New events carrying the kept lines of ``key`` whose ``seq`` is in ``missing``.

        The attempt's last event goes again too when everything is asked for (an outcome
        sent again: its last event may have been lost with it).
        """
        self._forget(self._clock())
        again: list[Event[task_pb2.TaskLog]] = []
        for kept in self._by_attempt.get(key, ()):
            sent = kept.event.payload
            lines = [line for line in sent.lines if _within(line.seq, missing)]
            final = sent.last_seq if missing is _EVERYTHING else 0
            if lines or final:
                again.append(_copy(kept.event, lines, final))
        return again

    def last_events_since(self, age_s: float) -> list[Event[task_pb2.TaskLog]]:
        """New copies, without lines, of the attempts' last events kept for ``age_s``.

        After a publish failed (the broker may have restarted and lost what it had
        acknowledged), these tell the metadata service again how many lines each
        attempt that ended lately wrote, so it can ask for any it lacks.
        """
        since = self._clock() - age_s
        last: list[Event[task_pb2.TaskLog]] = []
        for kept in reversed(self._kept):
            if kept.kept_at < since:
                break
            if kept.event.payload.last_seq:
                last.append(_copy(kept.event, [], kept.event.payload.last_seq))
        last.reverse()
        return last

    def _forget(self, now: float) -> None:
        kept, by_attempt = self._kept, self._by_attempt
        too_old = now - self._max_age_s
        while kept and (self._bytes > self._max_bytes or kept[0].kept_at < too_old):
            oldest = kept.popleft()
            self._bytes -= oldest.size
            attempt = by_attempt[oldest.key]
            attempt.popleft()
            if not attempt:
                del by_attempt[oldest.key]


def _within(seq: int, ranges: Iterable[tuple[int, int]]) -> bool:
    return any(first <= seq <= last for first, last in ranges)


def _copy(
    sent: Event[task_pb2.TaskLog], lines: list[task_pb2.TaskLog.Line], final: int
) -> Event[task_pb2.TaskLog]:
    payload = sent.payload
    return Event(
        type=topics.TASK_LOG,
        payload=task_pb2.TaskLog(
            task_id=payload.task_id,
            attempt=payload.attempt,
            worker_id=payload.worker_id,
            lines=lines,
            last_seq=final,
        ),
        tenant=sent.tenant,
        run_id=sent.run_id,
        source=sent.source,
        traceparent=sent.traceparent,
        tracestate=sent.tracestate,
    )
