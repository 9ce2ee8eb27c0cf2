"""Task logs' decisions: deduplication, the cap, cursors, filters, tails."""

import random
from datetime import UTC, datetime

import pytest

from interlock.common.permissions import Role, find_rule
from interlock.metadata.logs.domain import (
    AttemptLog,
    Cursor,
    IncomingLog,
    LineFilter,
    LogLine,
    StoredChunk,
    most_positions,
    parse_cursor,
    plan_writes,
    select_lines,
    select_tail,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ATTEMPT = ("run-1", "a", 1)


def line(seq: int, message: str = "", level: str = "INFO") -> LogLine:
    return LogLine(seq=seq, time=T0, level=level, message=message or f"line {seq}")


def event(*seqs: int, attempt: tuple[str, str, int] = ATTEMPT) -> IncomingLog:
    return IncomingLog("tenant", attempt, [line(s) for s in seqs])


def test_lines_already_stored_are_skipped_so_a_redelivery_stores_nothing() -> None:
    first = plan_writes([event(1, 2), event(3)], {}, cap_bytes=1000, now=T0)
    assert [[ln.seq for ln in c.lines] for c in first.chunks] == [[1, 2], [3]]
    again = plan_writes([event(1, 2), event(3), event(4)], first.attempts, cap_bytes=1000, now=T0)
    assert [[ln.seq for ln in c.lines] for c in again.chunks] == [[4]]
    assert again.attempts[ATTEMPT].highest_seq == 4


def test_a_chunk_id_depends_only_on_its_attempt_and_first_line() -> None:
    [a] = plan_writes([event(5, 6)], {}, cap_bytes=1000, now=T0).chunks
    [b] = plan_writes([event(5, 6)], {}, cap_bytes=1000, now=T0).chunks
    [c] = plan_writes([event(5, 6, attempt=("run-1", "a", 2))], {}, cap_bytes=1000, now=T0).chunks
    assert a.chunk_id == b.chunk_id != c.chunk_id


def test_lines_past_the_cap_are_dropped_and_counted_in_one_marker() -> None:
    cap = len(b"line 1") * 2
    plan = plan_writes([event(1, 2, 3), event(4)], {}, cap_bytes=cap, now=T0)
    assert [ln.seq for c in plan.chunks for ln in c.lines] == [1, 2]
    [marker] = plan.markers
    assert marker.line.seq == 3
    assert marker.line.level == "WARNING"
    assert "2 more lines (12 bytes) dropped" in marker.line.message
    later = plan_writes([event(5)], plan.attempts, cap_bytes=cap, now=T0)
    assert later.chunks == []
    assert [m.line.seq for m in later.markers] == [3]
    assert "3 more lines (18 bytes) dropped" in later.markers[0].line.message
    assert later.markers[0].chunk_id == marker.chunk_id


def test_positions_reserved_per_run_cover_every_chunk_and_marker_a_plan_can_take() -> None:
    incoming = [event(1, 2, 3), event(1, attempt=("run-2", "b", 1)), event(4, 5)]
    reserved = most_positions(incoming)
    assert reserved == {"run-1": 4, "run-2": 3}  # a chunk per event, 2 markers per attempt
    plan = plan_writes(incoming, {}, cap_bytes=len(b"line 1") * 2, now=T0)
    taken: dict[str, int] = {}
    for key in [chunk.attempt for chunk in plan.chunks] + [m.attempt for m in plan.markers]:
        taken[key[0]] = taken.get(key[0], 0) + 1
    assert all(taken[run] <= reserved[run] for run in taken)
    assert most_positions([event()]) == {}  # an event without lines takes none


def test_any_order_of_redeliveries_stores_each_line_once() -> None:
    rng = random.Random(7)
    events = [event(*range(n * 3 + 1, n * 3 + 4)) for n in range(10)]
    stored: dict[tuple[str, str, int], AttemptLog] = {}
    kept: list[int] = []
    delivered = 0
    while delivered < len(events):
        # A batch redelivers some events already applied, then goes on.
        start = rng.randrange(0, delivered + 1)
        end = min(len(events), delivered + rng.randrange(1, 4))
        plan = plan_writes(events[start:end], stored, cap_bytes=10_000, now=T0)
        kept += [ln.seq for c in plan.chunks for ln in c.lines]
        stored = {**stored, **plan.attempts}
        delivered = end
    assert kept == list(range(1, 31))


def test_cursors_round_trip_and_garbage_is_refused() -> None:
    assert parse_cursor(str(Cursor(12, 3))) == Cursor(12, 3)
    assert Cursor(2, 9) < Cursor(3, 0)
    for bad in ["", "12", "a.b", "1.2.3", "-1.0", "9" * 30 + ".1"]:
        with pytest.raises(ValueError):
            parse_cursor(bad)


def chunks() -> list[StoredChunk]:
    return [
        StoredChunk(0, "a", 1, [line(1, "boot"), line(2, "disk full", "ERROR")]),
        StoredChunk(1, "b", 1, [line(1, "hello", "DEBUG")]),
        StoredChunk(3, "a", 1, [line(3, "Disk ok", "WARNING"), line(4, "done")]),
    ]


def test_lines_are_read_after_a_cursor_with_level_and_text_filters() -> None:
    lines, cursor, more = select_lines(chunks(), after=None, wanted=LineFilter(), limit=2)
    assert [r.line.message for r in lines] == ["boot", "disk full"]
    assert (cursor, more) == (Cursor(0, 1), True)
    rest, cursor, more = select_lines(chunks(), after=cursor, wanted=LineFilter(), limit=10)
    assert [r.line.message for r in rest] == ["hello", "Disk ok", "done"]
    assert (cursor, more) == (Cursor(3, 1), False)
    warned, _, _ = select_lines(
        chunks(), after=None, wanted=LineFilter(level="WARNING", contains="DISK"), limit=10
    )
    assert [(r.line.message, str(r.cursor)) for r in warned] == [
        ("disk full", "0.1"),
        ("Disk ok", "3.0"),
    ]


def test_the_tail_is_the_last_wanted_lines_oldest_first() -> None:
    newest_first = list(reversed(chunks()))
    lines, newest = select_tail(newest_first, after=None, wanted=LineFilter(), count=2)
    assert [r.line.message for r in lines] == ["Disk ok", "done"]
    assert newest == Cursor(3, 1)
    infos, _ = select_tail(newest_first, after=None, wanted=LineFilter(level="INFO"), count=3)
    assert [r.line.message for r in infos] == ["disk full", "Disk ok", "done"]
    after, newest = select_tail(newest_first, after=Cursor(1, 0), wanted=LineFilter(), count=9)
    assert [r.line.message for r in after] == ["Disk ok", "done"]


@pytest.mark.parametrize("suffix", ["logs", "logs/stream"])
def test_viewers_may_read_and_follow_logs_through_the_gateway(suffix: str) -> None:
    rule = find_rule("GET", f"/api/v1/executions/run-1/{suffix}?tail=5")
    assert rule is not None
    assert (rule.service, rule.role) == ("metadata", Role.VIEWER)
