"""Telling a lost ``task.scheduled`` from a queued one (issue 22).

A task waiting in ``scheduled`` is either still queued behind other work, or its
event was lost (a broker that restarted empty). Re-publishing every task that waited
longer than a fixed bound turns a backlog into duplicates: the copies join the queue,
waits grow, more tasks cross the bound. What the scheduler sees of the workers tells
the two apart:

- workers take tasks in dispatch order (per partition, and they read partitions in
  turn), so once they picked up a task dispatched ``after`` later than a waiting one,
  the waiting one is not ahead of them in the queue: it is lost;
- when workers neither picked anything up nor reported a running task for ``after``,
  nothing is queued in front of the waiting task either (or no worker is there, and a
  copy costs a record);
- when they only report running tasks (heartbeats) and pick nothing up for
  ``stalled_factor * after``, the queue may be stuck behind long tasks, or lost while
  workers still had room: waiting tasks are re-sent then, late but never forever
  (a copy a worker already holds or just ran is dropped by the worker).

A scheduler instance sees the pick-ups of its own runs only, which are spread over
every partition of the queue, so its view of the queue's head lags the truth a little
(late re-publishing, never early).

Each *lane* (a queue's priority band: the topic its tasks travel on) is its own queue:
workers take a higher band first and serve only their queues, so a pick-up in one lane
says nothing about another's order (a high-priority task picked up at once must not
make the low-priority backlog look lost). :class:`Lanes` keeps one
:class:`QueueProgress` per lane.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


class QueueProgress:
    """What this process saw of workers taking tasks; the reconciler's cut-off.

    Args:
        now: When watching began (a process that just started waits ``after``
            before it calls anything lost: it has seen nothing yet).
        stalled_factor: How many times ``after`` without any pick-up makes waiting
            tasks lost even while workers report running ones. Default: 10.
    """

    def __init__(self, now: datetime, *, stalled_factor: int = 10) -> None:
        self._head: datetime | None = None
        self._last_activity = now
        self._last_pickup = now
        self._stalled_factor = stalled_factor

    @property
    def head(self) -> datetime | None:
        """Dispatch time of the latest-dispatched task a worker picked up, if any."""
        return self._head

    @property
    def last_activity(self) -> datetime:
        """When a worker last took or ran a task (or watching began)."""
        return self._last_activity

    def picked_up(self, dispatched_at: datetime, now: datetime) -> None:
        """A worker started (or finished) an attempt dispatched at ``dispatched_at``."""
        if self._head is None or dispatched_at > self._head:
            self._head = dispatched_at
        self._last_activity = now
        self._last_pickup = now

    def busy(self, now: datetime) -> None:
        """A worker reported a running attempt (a heartbeat): the queue is not idle."""
        self._last_activity = now

    def lost_before(self, now: datetime, after: timedelta) -> datetime | None:
        """Tasks still waiting that were dispatched before this time are lost.

        Returns:
            The cut-off, or ``None`` when no waiting task can be called lost yet.
        """
        if now - self._last_activity >= after:
            return now - after
        if now - self._last_pickup >= after * self._stalled_factor:
            return now - after
        if self._head is None:
            return None
        return min(now - after, self._head - after)


@dataclass(frozen=True)
class Cutoffs:
    """Per lane, the dispatch time before which waiting tasks are lost.

    Attributes:
        by_lane: The cut-off of each lane seen so far, ``None`` where none is lost yet.
        otherwise: The cut-off of lanes never seen (no pick-up, no heartbeat), or
            ``None``.
    """

    by_lane: dict[str, datetime | None]
    otherwise: datetime | None

    @property
    def latest(self) -> datetime | None:
        """The latest cut-off of any lane: no lost task was dispatched after it."""
        known = [cutoff for cutoff in (*self.by_lane.values(), self.otherwise) if cutoff]
        return max(known, default=None)


class Lanes:
    """The progress of every lane (queue and priority band) this process saw.

    Args:
        now: When watching began.
        stalled_factor: See :class:`QueueProgress`. Default: 10.
    """

    def __init__(self, now: datetime, *, stalled_factor: int = 10) -> None:
        self._started = now
        self._stalled_factor = stalled_factor
        self._lanes: dict[str, QueueProgress] = {}

    def lane(self, name: str) -> QueueProgress:
        """The progress of lane ``name`` (watched since this process began)."""
        progress = self._lanes.get(name)
        if progress is None:
            progress = self._lanes[name] = QueueProgress(
                self._started, stalled_factor=self._stalled_factor
            )
        return progress

    def idle(self, name: str, now: datetime) -> timedelta:
        """How long no worker took or ran a task of lane ``name``, as this process saw."""
        progress = self._lanes.get(name)
        return now - (progress.last_activity if progress is not None else self._started)

    def lost_before(self, now: datetime, after: timedelta) -> Cutoffs:
        """Each lane's cut-off (:meth:`QueueProgress.lost_before`)."""
        unseen = QueueProgress(self._started, stalled_factor=self._stalled_factor)
        return Cutoffs(
            by_lane={name: p.lost_before(now, after) for name, p in self._lanes.items()},
            otherwise=unseen.lost_before(now, after),
        )
