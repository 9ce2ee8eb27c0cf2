"""The reconciler's cut-off: queued tasks are not lost tasks."""

from datetime import UTC, datetime, timedelta

from interlock.common import topics
from interlock.events.v1 import workflow_pb2
from interlock.scheduler.domain.queue import (
    Lanes,
    QueueProgress,
    UnservedTask,
    lane_queue,
    waiting_for_workers,
)

T0 = datetime(2026, 3, 2, 12, tzinfo=UTC)
AFTER = timedelta(seconds=30)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_nothing_is_lost_before_anything_was_seen_for_a_while() -> None:
    progress = QueueProgress(T0)
    assert progress.lost_before(at(10), AFTER) is None
    assert progress.lost_before(at(30), AFTER) == at(0)


def test_a_backlog_drained_in_order_is_never_lost_however_long_it_waits() -> None:
    progress = QueueProgress(T0)
    # 10,000 tasks dispatched in the first second; workers pick them up in order for
    # minutes, each pick-up dispatched no later than the ones still waiting + 30 s.
    for second in range(1, 300):
        progress.picked_up(at(second / 300), at(second))
        cutoff = progress.lost_before(at(second), AFTER)
        assert cutoff is not None and cutoff < at(0)


def test_a_task_overtaken_by_work_dispatched_later_is_lost() -> None:
    progress = QueueProgress(T0)
    progress.picked_up(at(45), at(50))
    assert progress.lost_before(at(50), AFTER) == at(15)


def test_heartbeats_mean_busy_workers_not_a_lost_queue() -> None:
    progress = QueueProgress(T0)
    for second in range(0, 120, 5):
        progress.busy(at(second))
        assert progress.lost_before(at(second), AFTER) is None
    assert progress.lost_before(at(150), AFTER) == at(120)


def test_a_queue_that_only_heartbeats_is_stalled_after_ten_times_the_bound() -> None:
    progress = QueueProgress(T0)
    for second in range(0, 300, 5):
        progress.busy(at(second))
        assert progress.lost_before(at(second), AFTER) is None
    progress.busy(at(300))
    assert progress.lost_before(at(300), AFTER) == at(270)


def test_each_lane_keeps_its_own_order() -> None:
    lanes = Lanes(T0)
    # A high-priority task dispatched at 100 s is picked up at once, ahead of a
    # low-priority backlog dispatched at 0-1 s and still draining in order.
    lanes.lane("task.scheduled.low").picked_up(at(0.5), at(100))
    lanes.lane("task.scheduled.high").picked_up(at(100), at(100))
    cutoffs = lanes.lost_before(at(100), AFTER)
    assert cutoffs.by_lane["task.scheduled.low"] == at(0.5) - AFTER
    assert cutoffs.by_lane["task.scheduled.high"] == at(70)
    assert cutoffs.latest == at(70)


def test_a_lane_never_seen_follows_the_idle_rule() -> None:
    lanes = Lanes(T0)
    lanes.lane("task.scheduled").busy(at(20))
    assert lanes.lost_before(at(20), AFTER).otherwise is None
    cutoffs = lanes.lost_before(at(40), AFTER)
    assert cutoffs.otherwise == at(10)
    assert cutoffs.by_lane == {"task.scheduled": None}


def test_a_queue_is_idle_only_while_none_of_its_bands_sees_a_worker() -> None:
    lanes = Lanes(T0)
    assert lanes.queue_idle("gpu", at(12)) == timedelta(seconds=12)
    lanes.lane(topics.task_topic("gpu", priority=-1)).busy(at(10))
    assert lanes.queue_idle("gpu", at(12)) == timedelta(seconds=2)
    assert lanes.queue_idle("", at(12)) == timedelta(seconds=12)


def test_a_lane_names_its_queue() -> None:
    assert lane_queue(topics.task_topic("gpu", priority=1)) == "gpu"
    assert lane_queue(topics.task_topic("queue.x")) == "queue.x"
    assert lane_queue(topics.task_topic("", priority=-1)) == ""


def test_tasks_waiting_for_a_worker_are_told_once_per_run_with_the_queue() -> None:
    def waiting(run_id: str, task_id: str, queue: str) -> UnservedTask:
        lane = topics.task_topic(queue)
        return UnservedTask(run_id, "t1", "wf", 2, task_id, 1, lane)

    tasks = [waiting("r1", "a", "gpu"), waiting("r2", "b", ""), waiting("r1", "c", "gpu")]
    events = waiting_for_workers(tasks, timedelta(seconds=10), T0)
    assert [(e.type, e.run_id, e.tenant) for e in events] == [
        (topics.WORKFLOW_WAITING, "r1", "t1"),
        (topics.WORKFLOW_WAITING, "r2", "t1"),
    ]
    first, second = (e.payload for e in events)
    assert isinstance(first, workflow_pb2.WorkflowWaiting)
    assert isinstance(second, workflow_pb2.WorkflowWaiting)
    assert (first.workflow_name, first.workflow_version, first.reason) == ("wf", 2, "")
    assert [(t.task_id, t.attempt) for t in first.tasks] == [("a", 1), ("c", 1)]
    assert first.tasks[0].reason == (
        "waiting for a worker serving queue 'gpu': none took or ran a task of it in the last 10 s"
    )
    assert "queue 'default'" in second.tasks[0].reason
