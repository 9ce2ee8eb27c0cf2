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

The same view tells a queue no worker serves: while its tasks wait, no worker took or
ran any task of any of its lanes for a while (:meth:`Lanes.queue_idle`). The run view
then says why those tasks wait (:func:`waiting_for_workers`); their start clears it.

Each *lane* (a queue's priority band: the topic its tasks travel on) is its own queue:
workers take a higher band first and serve only their queues, so a pick-up in one lane
says nothing about another's order (a high-priority task picked up at once must not
make the low-priority backlog look lost). :class:`Lanes` keeps one
:class:`QueueProgress` per lane.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from interlock.common import topics
from interlock.common.events import Event
from interlock.events.v1 import workflow_pb2
from interlock.scheduler.domain.run import SOURCE


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

    def queue_idle(self, queue: str, now: datetime) -> timedelta:
        """How long no worker took or ran a task of any band of ``queue``."""
        return min(self.idle(lane, now) for lane in topics.queue_topics(queue))

    def lost_before(self, now: datetime, after: timedelta) -> Cutoffs:
        """Each lane's cut-off (:meth:`QueueProgress.lost_before`)."""
        unseen = QueueProgress(self._started, stalled_factor=self._stalled_factor)
        return Cutoffs(
            by_lane={name: p.lost_before(now, after) for name, p in self._lanes.items()},
            otherwise=unseen.lost_before(now, after),
        )


def lane_queue(lane: str) -> str:
    """The queue whose tasks travel on ``lane`` (a task topic); ``""``: the default one."""
    return lane.partition(".queue.")[2]


@dataclass(frozen=True)
class UnservedTask:
    """A task waiting, scheduled, on a lane whose queue no worker serves lately."""

    run_id: str
    tenant: str
    workflow_name: str
    workflow_version: int
    task_id: str
    attempt: int
    lane: str


def waiting_for_workers(
    tasks: Sequence[UnservedTask], after: timedelta, now: datetime
) -> list[Event]:
    """One ``workflow.waiting`` per run, naming its tasks and why they wait."""
    by_run: dict[str, list[UnservedTask]] = {}
    for task in tasks:
        by_run.setdefault(task.run_id, []).append(task)
    events: list[Event] = []
    for run_id, waiting in by_run.items():
        first = waiting[0]
        payload = workflow_pb2.WorkflowWaiting(
            workflow_name=first.workflow_name,
            workflow_version=first.workflow_version,
            tasks=[
                workflow_pb2.WaitingTask(
                    task_id=task.task_id, attempt=task.attempt, reason=_unserved(task, after)
                )
                for task in waiting
            ],
        )
        events.append(
            Event(
                type=topics.WORKFLOW_WAITING,
                payload=payload,
                tenant=first.tenant,
                run_id=run_id,
                source=SOURCE,
                time=now,
            )
        )
    return events


def _unserved(task: UnservedTask, after: timedelta) -> str:
    queue = lane_queue(task.lane) or "default"
    return (
        f"waiting for a worker serving queue {queue!r}: none took or ran a task of it "
        f"in the last {after.total_seconds():g} s"
    )
