"""Lines lost with the broker: asked for again, or counted lost.

An attempt's last ``task.log`` says how many lines it wrote. When lines below that
never arrived (the broker lost them after acknowledging them: the local one keeps
nothing across a restart), the ingest opens a *gap*. Every ``interval_s`` the gaps
that are due are looked at: the worker that ran the attempt is asked for the missing
lines (``task.log_missing``, read by every worker instance; the one named re-sends
them as ``task.log`` with the same ``seq``), again every ``ask_every`` while they are
missing, and ``lost_after`` after they were found missing the rest is given up: one
marker line then says how many lines were lost, so a reader sees the hole.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta

from interlock.common import topics
from interlock.common.events import Event
from interlock.common.resources import PeriodicPasses
from interlock.events.v1 import task_pb2
from interlock.metadata.logs.domain import AttemptKey, AttemptLog, GapStep, gap_step, give_up
from interlock.metadata.logs.store import LogStore

__all__ = ["LogGaps"]

Publish = Callable[[Sequence[Event]], Awaitable[None]]


class LogGaps(PeriodicPasses):
    """Asks workers for the lines their attempts' logs lack; gives up on them in time.

    Args:
        store: The logs' store.
        publish: Publishes events (``KafkaBroker.publish``).
        source: This service's name, in the events.
        ask_every: Time between two requests for the same lines.
        lost_after: Time after which missing lines are counted lost.
        interval_s: Time between two looks.
        batch_size: Most gaps one look handles.
    """

    name = "log-gaps"

    def __init__(
        self,
        store: LogStore,
        publish: Publish,
        *,
        source: str,
        ask_every: timedelta,
        lost_after: timedelta,
        interval_s: float,
        batch_size: int,
    ) -> None:
        super().__init__(interval_s=interval_s)
        self._store = store
        self._publish = publish
        self._source = source
        self._ask_every = ask_every
        self._lost_after = lost_after
        self._batch_size = batch_size

    async def pass_once(self) -> int:
        """Handle the gaps due now; how many there were."""
        now = datetime.now(UTC)
        due = await self._store.due_gaps(now, self._batch_size)
        if not due:
            return 0
        logs = await self._store.attempt_logs(list(due))
        asks: dict[AttemptKey, Event] = {}
        closed: list[AttemptKey] = []
        for key, tenant in due.items():
            log = logs.get(key, AttemptLog())
            step = gap_step(log, now=now, lost_after=self._lost_after)
            if step is GapStep.ASK:
                asks[key] = self._request(tenant, key, log)
                continue
            if step is GapStep.GIVE_UP:
                await self._store.write_lost(tenant, key, give_up(log, now=now))
            closed.append(key)
        if asks:
            # Postponed only once asked: a failed publish is tried again next look.
            await self._publish(list(asks.values()))
            await self._store.postpone_gaps(list(asks), now + self._ask_every)
        await self._store.close_gaps(closed)
        return len(due)

    def _request(self, tenant: str, key: AttemptKey, log: AttemptLog) -> Event:
        run_id, task_id, attempt = key
        return Event(
            type=topics.TASK_LOG_MISSING,
            payload=task_pb2.TaskLogMissing(
                task_id=task_id,
                attempt=attempt,
                worker_id=log.worker_id,
                missing=[
                    task_pb2.TaskLogMissing.SeqRange(first=first, last=last)
                    for first, last in log.missing()
                ],
            ),
            tenant=tenant,
            run_id=run_id,
            source=self._source,
        )
