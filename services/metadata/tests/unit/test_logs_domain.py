"""Task logs' decisions: deduplication, the cap, gaps, cursors, filters, tails."""

import random
from datetime import UTC, datetime, timedelta

import pytest

from interlock.common.permissions import Role, find_rule
from interlock.metadata.logs.domain import (
    AttemptLog,
    Cursor,
    GapStep,
    IncomingLog,
    LineFilter,
    LogLine,
    StoredChunk,
    gap_step,
    give_up,
    marker_id,
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


def event(*seqs: int, attempt: tuple[str, str, int] = ATTEMPT, last_seq: int = 0) -> IncomingLog:
    return IncomingLog("tenant", attempt, [line(s) for s in seqs], last_seq, "worker-1")


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


def test_an_attempt_whose_last_event_counts_more_lines_than_arrived_opens_a_gap() -> None:
    # Lines 1-2 and 5 were lost with the broker; the last event says 6 were written.
    plan = plan_writes([event(3, 4), event(6, last_seq=6)], {}, cap_bytes=1000, now=T0)
    log = plan.attempts[ATTEMPT]
    assert log.missing() == ((1, 2), (5, 5))
    assert (log.written, log.worker_id, log.missing_since) == (6, "worker-1", T0)
    assert [gap.attempt for gap in plan.gaps] == [ATTEMPT]
    assert plan.gaps[0].worker_id == "worker-1"
    # Still missing in a later batch: the gap is open already, not opened twice.
    later = plan_writes([event(2)], plan.attempts, cap_bytes=1000, now=T0 + timedelta(seconds=1))
    assert later.gaps == [] and later.closed_gaps == []
    assert later.attempts[ATTEMPT].missing() == ((1, 1), (5, 5))
    assert later.attempts[ATTEMPT].missing_since == T0


def test_lines_sent_again_fill_their_holes_and_close_the_gap() -> None:
    opened = plan_writes([event(3, 4), event(6, last_seq=6)], {}, cap_bytes=1000, now=T0)
    again = plan_writes([event(1, 2), event(5), event(3)], opened.attempts, cap_bytes=1000, now=T0)
    assert [[ln.seq for ln in c.lines] for c in again.chunks] == [[1, 2], [5]]  # 3: a copy
    assert again.closed_gaps == [ATTEMPT]
    assert again.attempts[ATTEMPT].missing() == ()
    assert again.attempts[ATTEMPT].missing_since is None
    assert again.attempts[ATTEMPT].seqs == ((1, 6),)


def test_an_attempt_with_every_line_opens_no_gap_whatever_the_order() -> None:
    in_order = plan_writes([event(1, 2), event(3, last_seq=3)], {}, cap_bytes=1000, now=T0)
    last_first = plan_writes([event(3, last_seq=3), event(1, 2)], {}, cap_bytes=1000, now=T0)
    for plan in (in_order, last_first):
        assert plan.gaps == [] and plan.closed_gaps == []
        assert plan.attempts[ATTEMPT].missing() == ()
    # A last event without lines (they all went before) counts as well.
    empty_last = plan_writes([event(1, 2, 3), event(last_seq=3)], {}, cap_bytes=1000, now=T0)
    assert empty_last.gaps == []


def test_lines_past_the_cap_are_counted_not_missing() -> None:
    plan = plan_writes([event(1, 2, 3, last_seq=3)], {}, cap_bytes=len(b"line 1"), now=T0)
    assert [ln.seq for c in plan.chunks for ln in c.lines] == [1]
    assert plan.attempts[ATTEMPT].missing() == ()
    assert plan.gaps == []


def test_a_gap_is_asked_about_until_it_closes_or_its_time_is_up() -> None:
    log = plan_writes([event(2, last_seq=3)], {}, cap_bytes=1000, now=T0).attempts[ATTEMPT]
    lost_after = timedelta(seconds=60)
    assert gap_step(log, now=T0, lost_after=lost_after) is GapStep.ASK
    assert gap_step(log, now=T0 + timedelta(seconds=59), lost_after=lost_after) is GapStep.ASK
    late = T0 + timedelta(seconds=60)
    assert gap_step(log, now=late, lost_after=lost_after) is GapStep.GIVE_UP
    filled = plan_writes([event(1, 3)], {ATTEMPT: log}, cap_bytes=1000, now=late)
    assert gap_step(filled.attempts[ATTEMPT], now=late, lost_after=lost_after) is GapStep.CLOSE


def test_lines_given_up_on_are_counted_in_a_marker_that_late_lines_shrink() -> None:
    log = plan_writes([event(3, last_seq=5)], {}, cap_bytes=1000, now=T0).attempts[ATTEMPT]
    lost = give_up(log, now=T0)
    assert lost.lost == ((1, 2), (4, 5)) and lost.missing() == ()
    assert gap_step(lost, now=T0, lost_after=timedelta(seconds=1)) is GapStep.CLOSE
    # Two of them arrive after all: stored, and the marker counts the other two.
    late = plan_writes([event(1, 4)], {ATTEMPT: lost}, cap_bytes=1000, now=T0)
    assert [ln.seq for c in late.chunks for ln in c.lines] == [1, 4]
    [marker] = late.markers
    assert marker.chunk_id == marker_id(ATTEMPT, "lost")
    assert (marker.line.seq, marker.line.level) == (2, "WARNING")
    assert marker.line.message.startswith("2 lines of this attempt (seq 2, 5) never reached")
    # The last two: the marker goes.
    done = plan_writes([event(2, 5)], late.attempts, cap_bytes=1000, now=T0)
    assert done.markers == [] and done.removed_markers == [marker_id(ATTEMPT, "lost")]
    assert done.attempts[ATTEMPT].lost == ()


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
