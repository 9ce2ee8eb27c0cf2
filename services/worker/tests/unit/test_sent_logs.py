"""The log lines a worker keeps to send again: what it answers, what it forgets."""

from interlock.common import topics
from interlock.common.events import Event
from interlock.events.v1 import task_pb2
from interlock.worker.runtime._sent_logs import SentLogs

RUN = "run-1"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def sent(*seqs: int, task_id: str = "a", last_seq: int = 0) -> Event[task_pb2.TaskLog]:
    return Event(
        type=topics.TASK_LOG,
        payload=task_pb2.TaskLog(
            task_id=task_id,
            attempt=1,
            worker_id="worker-1",
            lines=[task_pb2.TaskLog.Line(seq=seq, message=f"line {seq}") for seq in seqs],
            last_seq=last_seq,
        ),
        tenant="t",
        run_id=RUN,
        source="worker",
    )


def missing(
    *ranges: tuple[int, int], worker_id: str = "worker-1"
) -> Event[task_pb2.TaskLogMissing]:
    return Event(
        type=topics.TASK_LOG_MISSING,
        payload=task_pb2.TaskLogMissing(
            task_id="a",
            attempt=1,
            worker_id=worker_id,
            missing=[task_pb2.TaskLogMissing.SeqRange(first=a, last=b) for a, b in ranges],
        ),
        tenant="t",
        run_id=RUN,
        source="metadata",
    )


def seqs(events: list[Event[task_pb2.TaskLog]]) -> list[list[int]]:
    return [[line.seq for line in event.payload.lines] for event in events]


def kept_logs(clock: Clock | None = None, **bounds: float) -> SentLogs:
    return SentLogs(
        worker_id="worker-1",
        max_bytes=int(bounds.get("max_bytes", 1 << 20)),
        max_age_s=bounds.get("max_age_s", 600),
        clock=clock or Clock(),
    )


def test_a_request_gets_the_missing_lines_again_with_their_seqs() -> None:
    logs = kept_logs()
    first, second = sent(1, 2, 3), sent(4, 5, last_seq=5)
    logs.keep((RUN, "a", 1), first)
    logs.keep((RUN, "a", 1), second)
    logs.keep((RUN, "b", 1), sent(1, 2, task_id="b"))
    again = logs.answer(missing((2, 2), (5, 5)))
    assert seqs(again) == [[2], [5]]
    assert [e.payload.last_seq for e in again] == [0, 0]
    assert all(e.type is topics.TASK_LOG and e.run_id == RUN for e in again)
    assert {e.id for e in again}.isdisjoint({first.id, second.id})  # new events
    assert again[0].payload.lines[0].message == "line 2"


def test_a_request_naming_another_worker_or_an_unknown_attempt_gets_nothing() -> None:
    logs = kept_logs()
    logs.keep((RUN, "a", 1), sent(1, 2))
    assert logs.answer(missing((1, 2), worker_id="worker-2")) == []
    assert logs.again((RUN, "zzz", 1), ((1, 9),)) == []


def test_everything_asked_for_includes_the_attempts_last_event() -> None:
    logs = kept_logs()
    logs.keep((RUN, "a", 1), sent(1, 2))
    logs.keep((RUN, "a", 1), sent(last_seq=2))
    again = logs.again((RUN, "a", 1))
    assert seqs(again) == [[1, 2], []]
    assert again[-1].payload.last_seq == 2


def test_the_oldest_lines_are_forgotten_past_the_byte_budget() -> None:
    one = sent(1).payload.ByteSize()
    logs = kept_logs(max_bytes=one * 2)
    for seq in (1, 2, 3):
        logs.keep((RUN, "a", 1), sent(seq))
    assert logs.size == one * 2
    assert seqs(logs.answer(missing((1, 3)))) == [[2], [3]]


def test_lines_are_forgotten_once_older_than_the_window() -> None:
    clock = Clock()
    logs = kept_logs(clock, max_age_s=10)
    logs.keep((RUN, "a", 1), sent(1))
    clock.now = 5
    logs.keep((RUN, "a", 1), sent(2))
    clock.now = 11
    assert seqs(logs.answer(missing((1, 2)))) == [[2]]
    clock.now = 16
    assert logs.answer(missing((1, 2))) == []
    assert logs.size == 0


def test_a_budget_of_zero_keeps_nothing() -> None:
    logs = kept_logs(max_bytes=0)
    logs.keep((RUN, "a", 1), sent(1))
    assert logs.answer(missing((1, 1))) == []


def test_after_an_outage_the_last_events_of_attempts_ended_lately_go_again_without_lines() -> None:
    clock = Clock()
    logs = kept_logs(clock)
    logs.keep((RUN, "a", 1), sent(1, 2, last_seq=2))
    clock.now = 20
    logs.keep((RUN, "b", 1), sent(1, task_id="b"))  # still running: no last event yet
    logs.keep((RUN, "c", 1), sent(1, task_id="c", last_seq=4))
    clock.now = 25
    again = logs.last_events_since(10)
    assert [(e.payload.task_id, e.payload.last_seq) for e in again] == [("c", 4)]
    assert seqs(again) == [[]]
    assert [e.payload.task_id for e in logs.last_events_since(30)] == ["a", "c"]
