"""Task log lines: how they are kept (chunks, per-attempt order, the cap) and read.

Pure: no I/O. The store keeps what :func:`plan_writes` decides and hands back the
chunks :func:`select_lines` and :func:`select_tail` read.

A run's log is a sequence of *chunks*, each holding the lines one ``task.log`` event
brought for one attempt (lines it had already, on redelivery, dropped). Each chunk has
a position, increasing within the run in the order chunks were stored; a line's
*cursor* is its chunk's position and its index in the chunk (``"<position>.<index>"``),
so cursors order every line of a run, and the lines of one attempt are in ``seq``
order. An attempt stores at most ``cap_bytes`` of messages; the lines past the cap are
counted in one marker line, updated as more are dropped.

An attempt's last event says how many lines it wrote (``last_seq``). Lines the broker
lost leave holes below it: the attempt then has a *gap*, the metadata service asks the
worker for the missing lines (:func:`gap_step`), stores what comes back like any line
(a late line fills its hole, so it comes after its neighbours in the log), and gives
up on the rest after a while: one marker line says how many were lost.
"""

from __future__ import annotations

import bisect
import enum
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

__all__ = [
    "LEVELS",
    "AttemptKey",
    "AttemptLog",
    "Chunk",
    "Cursor",
    "Gap",
    "GapStep",
    "IncomingLog",
    "LineFilter",
    "LogLine",
    "Marker",
    "ReadLine",
    "SeqRanges",
    "StoredChunk",
    "WritePlan",
    "gap_step",
    "give_up",
    "lost_marker",
    "marker_id",
    "marker_line",
    "parse_cursor",
    "plan_writes",
    "select_lines",
    "select_tail",
]

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
"""Log levels, least severe first."""

AttemptKey = tuple[str, str, int]
"""``(run id, task id, attempt)``."""

SeqRanges = tuple[tuple[int, int], ...]
"""Disjoint inclusive ``(first, last)`` ranges of ``seq``, in order, never touching."""

_CURSOR = re.compile(r"(\d{1,15})\.(\d{1,9})")
_MAX_SEQ = 2**63 - 1


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line as a task wrote it.

    Attributes:
        seq: Its position in its attempt's log, from 1.
        time: When it was written.
        level: One of :data:`LEVELS`.
        message: The text.
    """

    seq: int
    time: datetime
    level: str
    message: str

    @property
    def size(self) -> int:
        """Bytes it counts against its attempt's cap (its message, UTF-8)."""
        return len(self.message.encode())


@dataclass(frozen=True, slots=True)
class IncomingLog:
    """The lines one ``task.log`` event brought.

    Attributes:
        tenant: The run's tenant.
        attempt: Run, task and attempt.
        lines: In the order the task wrote them.
        last_seq: On the attempt's last event, how many lines it wrote; else 0.
        worker_id: The worker that sent them.
    """

    tenant: str
    attempt: AttemptKey
    lines: Sequence[LogLine]
    last_seq: int = 0
    worker_id: str = ""


@dataclass(frozen=True, slots=True)
class AttemptLog:
    """What is stored of one attempt's log so far.

    Attributes:
        seqs: The ``seq`` of every line stored or counted past the cap (a line
            arriving again is a copy).
        size: Bytes of messages stored.
        dropped_lines: Lines dropped past the cap.
        dropped_bytes: Their bytes.
        dropped_from: ``seq`` and time of the first dropped line (its marker's).
        written: How many lines the attempt wrote, once its last event came; else 0.
        worker_id: The worker that sent its last event (the one to ask for a gap).
        missing_since: When lines below ``written`` were first found missing; ``None``
            while none is.
        lost: Lines given up on (counted in the lost marker).
        lost_at: When they were first given up on (the marker's time).
    """

    seqs: SeqRanges = ()
    size: int = 0
    dropped_lines: int = 0
    dropped_bytes: int = 0
    dropped_from: tuple[int, datetime] | None = None
    written: int = 0
    worker_id: str = ""
    missing_since: datetime | None = None
    lost: SeqRanges = ()
    lost_at: datetime | None = None

    @property
    def highest_seq(self) -> int:
        """The highest ``seq`` stored or counted (0: none)."""
        return self.seqs[-1][1] if self.seqs else 0

    def missing(self) -> SeqRanges:
        """Lines below :attr:`written` neither stored, counted nor given up on."""
        if not self.written:
            return ()
        return _subtract(_subtract(((1, self.written),), self.seqs), self.lost)


@dataclass(frozen=True, slots=True)
class Chunk:
    """Lines of one attempt to store together.

    Attributes:
        tenant: The run's tenant.
        attempt: Run, task and attempt.
        lines: In ``seq`` order.
    """

    tenant: str
    attempt: AttemptKey
    lines: Sequence[LogLine]

    @property
    def chunk_id(self) -> str:
        """Stable for the same lines: storing it twice stores it once."""
        return json.dumps([*self.attempt, self.lines[0].seq])


@dataclass(frozen=True, slots=True)
class Marker:
    """One line saying how much of an attempt's log is missing: past the cap, or lost.

    Attributes:
        tenant: The run's tenant.
        attempt: Run, task and attempt.
        line: The line, its ``seq`` that of the first line it counts.
        kind: ``"dropped"`` (past the cap) or ``"lost"`` (in transit).
    """

    tenant: str
    attempt: AttemptKey
    line: LogLine
    kind: str = "dropped"

    @property
    def chunk_id(self) -> str:
        """The marker's chunk: one per attempt and kind, its line rewritten as counts change."""
        return marker_id(self.attempt, self.kind)


def marker_id(attempt: AttemptKey, kind: str) -> str:
    """The chunk id of ``attempt``'s marker of ``kind`` (``"dropped"`` or ``"lost"``)."""
    return json.dumps([*attempt, kind])


@dataclass(frozen=True, slots=True)
class Gap:
    """An ended attempt whose log lacks lines: the worker is asked for them.

    Attributes:
        tenant: The run's tenant.
        attempt: Run, task and attempt.
        worker_id: The worker to ask.
    """

    tenant: str
    attempt: AttemptKey
    worker_id: str


@dataclass(slots=True)
class WritePlan:
    """What to store for one batch of events.

    Attributes:
        chunks: New chunks, in the order they are to be positioned.
        markers: Markers to create or rewrite.
        removed_markers: Chunk ids of lost markers whose lines all arrived after all.
        attempts: The attempts' logs after the batch, for those that changed.
        gaps: Attempts missing lines (to ask for them).
        closed_gaps: Attempts no longer missing any.
    """

    chunks: list[Chunk] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)
    removed_markers: list[str] = field(default_factory=list)
    attempts: dict[AttemptKey, AttemptLog] = field(default_factory=dict)
    gaps: list[Gap] = field(default_factory=list)
    closed_gaps: list[AttemptKey] = field(default_factory=list)


def most_positions(incoming: Iterable[IncomingLog]) -> dict[str, int]:
    """The most chunk positions a batch can take in each run, before reading anything.

    One chunk per event with lines and two markers per attempt (the cap's, the lost
    lines'): reserved while what is stored of the attempts is read, so the two round
    trips overlap. Positions a plan leaves unused are gaps, which readers step over
    (only the order counts).
    """
    counts: dict[str, int] = {}
    attempts: set[AttemptKey] = set()
    for event in incoming:
        if event.lines:
            run_id = event.attempt[0]
            markers = 0 if event.attempt in attempts else 2
            counts[run_id] = counts.get(run_id, 0) + 1 + markers
            attempts.add(event.attempt)
    return counts


def marker_line(log: AttemptLog, cap_bytes: int) -> LogLine:
    """The marker line of an attempt whose log reached ``cap_bytes``."""
    seq, time = log.dropped_from or (log.highest_seq, datetime.min)
    return LogLine(
        seq=seq,
        time=time,
        level="WARNING",
        message=(
            f"log cap of {cap_bytes} bytes reached: {log.dropped_lines} more lines "
            f"({log.dropped_bytes} bytes) dropped"
        ),
    )


def lost_marker(log: AttemptLog) -> LogLine:
    """The marker line of an attempt whose :attr:`AttemptLog.lost` lines never came."""
    count = sum(last - first + 1 for first, last in log.lost)
    seqs = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in log.lost)
    return LogLine(
        seq=log.lost[0][0],
        time=log.lost_at or datetime.min,
        level="WARNING",
        message=(
            f"{count} lines of this attempt (seq {seqs}) never reached the log: lost in "
            "transit, and the worker could not send them again"
        ),
    )


def plan_writes(
    incoming: Iterable[IncomingLog],
    stored: dict[AttemptKey, AttemptLog],
    *,
    cap_bytes: int,
    now: datetime,
) -> WritePlan:
    """Decide what to store of a batch of events, given what is stored.

    Lines whose ``seq`` is stored or counted already are copies (a redelivered event,
    an attempt run again, lines sent again) and skipped; lines that would take an
    attempt's log past ``cap_bytes`` are dropped and counted in its marker. An
    attempt's last event tells how many lines it wrote: those neither stored nor
    counted are missing, which opens a gap (closed once they are all there).

    Args:
        incoming: The events' lines, in the order the events were consumed.
        stored: What is stored of the attempts concerned (absent: nothing yet).
        cap_bytes: Most bytes of messages kept per attempt.
        now: The time a gap found now is dated with.

    Returns:
        The chunks, markers, attempt logs and gaps to write.
    """
    plan = WritePlan()
    tenants: dict[AttemptKey, str] = {}
    for event in incoming:
        log = plan.attempts.get(event.attempt) or stored.get(event.attempt) or AttemptLog()
        dropped_before = log.dropped_lines
        log, kept = _take_lines(log, event.lines, cap_bytes)
        if kept:
            plan.chunks.append(Chunk(event.tenant, event.attempt, kept))
        if log.dropped_lines != dropped_before:
            marker = Marker(event.tenant, event.attempt, marker_line(log, cap_bytes))
            plan.markers = [m for m in plan.markers if m.chunk_id != marker.chunk_id]
            plan.markers.append(marker)
        if event.last_seq and event.last_seq >= log.written:
            # The latest worker to end the attempt (a re-run, say) is the one to ask.
            log = replace(log, written=event.last_seq, worker_id=event.worker_id)
        plan.attempts[event.attempt] = log
        tenants[event.attempt] = event.tenant
    for key, log in plan.attempts.items():
        _plan_lost_and_gaps(plan, tenants[key], key, log, stored.get(key) or AttemptLog(), now)
    return plan


def _take_lines(
    log: AttemptLog, lines: Sequence[LogLine], cap_bytes: int
) -> tuple[AttemptLog, list[LogLine]]:
    """The attempt's log after ``lines``, and those of them to store."""
    kept: list[LogLine] = []
    taken: list[int] = []
    for line in sorted(lines, key=lambda line: line.seq):
        if _contains(log.seqs, line.seq) or (taken and taken[-1] == line.seq):
            continue
        taken.append(line.seq)
        if log.dropped_lines == 0 and log.size + line.size <= cap_bytes:
            kept.append(line)
            log = replace(log, size=log.size + line.size)
        else:
            log = replace(
                log,
                dropped_lines=log.dropped_lines + 1,
                dropped_bytes=log.dropped_bytes + line.size,
                dropped_from=log.dropped_from or (line.seq, line.time),
            )
    if taken:
        log = replace(log, seqs=_union(log.seqs, _ranges(taken)))
    return log, kept


def _plan_lost_and_gaps(
    plan: WritePlan,
    tenant: str,
    key: AttemptKey,
    log: AttemptLog,
    before: AttemptLog,
    now: datetime,
) -> None:
    """Late lines leave the lost marker; a gap opens or closes with what is missing."""
    if log.lost:
        still_lost = _subtract(log.lost, log.seqs)
        if still_lost != log.lost:
            log = replace(log, lost=still_lost)
            if still_lost:
                plan.markers.append(Marker(tenant, key, lost_marker(log), kind="lost"))
            else:
                plan.removed_markers.append(marker_id(key, "lost"))
    missing = log.missing()
    if missing:
        log = replace(log, missing_since=log.missing_since or now)
        if before.missing_since is None:
            plan.gaps.append(Gap(tenant, key, log.worker_id))
    elif log.missing_since is not None:
        log = replace(log, missing_since=None)
        plan.closed_gaps.append(key)
    plan.attempts[key] = log


class GapStep(enum.Enum):
    """What to do about a gap now."""

    CLOSE = "close"
    """Nothing is missing any more."""
    ASK = "ask"
    """Ask the worker (again) for the missing lines."""
    GIVE_UP = "give_up"
    """Asked long enough: count the missing lines as lost."""


def gap_step(log: AttemptLog, *, now: datetime, lost_after: timedelta) -> GapStep:
    """What to do about an attempt's gap at ``now``.

    Args:
        log: What is stored of the attempt's log.
        now: The time.
        lost_after: How long after they were found missing lines are given up on.
    """
    if not log.missing():
        return GapStep.CLOSE
    if log.missing_since is not None and now - log.missing_since >= lost_after:
        return GapStep.GIVE_UP
    return GapStep.ASK


def give_up(log: AttemptLog, *, now: datetime) -> AttemptLog:
    """The attempt's log once its missing lines are counted lost."""
    return replace(
        log, lost=_union(log.lost, log.missing()), lost_at=log.lost_at or now, missing_since=None
    )


def _contains(ranges: SeqRanges, seq: int) -> bool:
    if ranges and ranges[-1][0] <= seq <= ranges[-1][1]:  # the usual case: one range
        return True
    index = bisect.bisect_right(ranges, (seq, _MAX_SEQ)) - 1
    return index >= 0 and ranges[index][0] <= seq <= ranges[index][1]


def _ranges(sorted_seqs: Sequence[int]) -> SeqRanges:
    ranges: list[tuple[int, int]] = []
    for seq in sorted_seqs:
        if ranges and ranges[-1][1] + 1 >= seq:
            ranges[-1] = (ranges[-1][0], max(ranges[-1][1], seq))
        else:
            ranges.append((seq, seq))
    return tuple(ranges)


def _union(a: SeqRanges, b: SeqRanges) -> SeqRanges:
    merged: list[tuple[int, int]] = []
    for first, last in sorted((*a, *b)):
        if merged and merged[-1][1] + 1 >= first:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return tuple(merged)


def _subtract(a: SeqRanges, b: SeqRanges) -> SeqRanges:
    left: list[tuple[int, int]] = []
    for first, last in a:
        for cut_first, cut_last in b:
            if cut_last < first or cut_first > last:
                continue
            if cut_first > first:
                left.append((first, cut_first - 1))
            first = cut_last + 1
            if first > last:
                break
        if first <= last:
            left.append((first, last))
    return tuple(left)


@dataclass(frozen=True, slots=True, order=True)
class Cursor:
    """A line's place in its run's log: its chunk's position, its index in the chunk."""

    position: int
    index: int

    def __str__(self) -> str:
        return f"{self.position}.{self.index}"


def parse_cursor(text: str) -> Cursor:
    """Read a cursor this service issued.

    Raises:
        ValueError: When ``text`` is not one.
    """
    match = _CURSOR.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not a log cursor: {text[:40]!r}")
    return Cursor(int(match[1]), int(match[2]))


@dataclass(frozen=True, slots=True)
class LineFilter:
    """Which lines a reader wants.

    Attributes:
        level: The least severe level wanted (``None``: all).
        contains: Text the message must contain, ignoring case (``None``: any).
    """

    level: str | None = None
    contains: str | None = None

    def accepts(self, line: LogLine) -> bool:
        """Whether ``line`` passes."""
        if self.level is not None and _severity(line.level) < _severity(self.level):
            return False
        return self.contains is None or self.contains.casefold() in line.message.casefold()


@dataclass(frozen=True, slots=True)
class StoredChunk:
    """A chunk as read back: its position, attempt and lines."""

    position: int
    task_id: str
    attempt: int
    lines: Sequence[LogLine]


@dataclass(frozen=True, slots=True)
class ReadLine:
    """A line as returned to a reader."""

    cursor: Cursor
    task_id: str
    attempt: int
    line: LogLine


def select_lines(
    chunks: Iterable[StoredChunk], *, after: Cursor | None, wanted: LineFilter, limit: int
) -> tuple[list[ReadLine], Cursor | None, bool]:
    """The first ``limit`` wanted lines after ``after``, from chunks in position order.

    Returns:
        The lines; the cursor to read on from (the last line returned, or the last
        line looked at when fewer than ``limit`` were found); whether ``limit`` was
        reached (more may follow).
    """
    lines: list[ReadLine] = []
    last = after
    for cursor, read in _lines_after(chunks, after):
        if len(lines) == limit:
            return lines, last, True
        last = cursor
        if wanted.accepts(read.line):
            lines.append(read)
    return lines, last, False


def select_tail(
    chunks_newest_first: Iterable[StoredChunk],
    *,
    after: Cursor | None,
    wanted: LineFilter,
    count: int,
) -> tuple[list[ReadLine], Cursor | None]:
    """The last ``count`` wanted lines after ``after``, oldest first.

    Args:
        chunks_newest_first: Chunks in descending position order.
        after: Only lines after this cursor.
        wanted: Which lines count.
        count: How many lines at most.

    Returns:
        The lines, and the cursor of the newest line looked at (to follow on from).
    """
    newest: Cursor | None = None
    lines: list[ReadLine] = []
    for chunk in chunks_newest_first:
        for index in range(len(chunk.lines) - 1, -1, -1):
            cursor = Cursor(chunk.position, index)
            if after is not None and cursor <= after:
                return list(reversed(lines)), newest or after
            newest = newest or cursor
            line = chunk.lines[index]
            if wanted.accepts(line):
                lines.append(ReadLine(cursor, chunk.task_id, chunk.attempt, line))
                if len(lines) == count:
                    return list(reversed(lines)), newest
    return list(reversed(lines)), newest or after


def _lines_after(
    chunks: Iterable[StoredChunk], after: Cursor | None
) -> Iterator[tuple[Cursor, ReadLine]]:
    for chunk in chunks:
        for index, line in enumerate(chunk.lines):
            cursor = Cursor(chunk.position, index)
            if after is None or cursor > after:
                yield cursor, ReadLine(cursor, chunk.task_id, chunk.attempt, line)


def _severity(level: str) -> int:
    try:
        return LEVELS.index(level.upper())
    except ValueError:
        return 0
