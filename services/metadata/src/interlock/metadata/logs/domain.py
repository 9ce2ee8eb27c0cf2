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
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

__all__ = [
    "LEVELS",
    "AttemptKey",
    "AttemptLog",
    "Chunk",
    "Cursor",
    "IncomingLog",
    "LineFilter",
    "LogLine",
    "Marker",
    "ReadLine",
    "StoredChunk",
    "WritePlan",
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

_CURSOR = re.compile(r"(\d{1,15})\.(\d{1,9})")


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
    """

    tenant: str
    attempt: AttemptKey
    lines: Sequence[LogLine]


@dataclass(frozen=True, slots=True)
class AttemptLog:
    """What is stored of one attempt's log so far.

    Attributes:
        last_seq: The highest ``seq`` stored (lines at or below it are copies).
        size: Bytes of messages stored.
        dropped_lines: Lines dropped past the cap.
        dropped_bytes: Their bytes.
        dropped_from: ``seq`` and time of the first dropped line (its marker's).
    """

    last_seq: int = 0
    size: int = 0
    dropped_lines: int = 0
    dropped_bytes: int = 0
    dropped_from: tuple[int, datetime] | None = None


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
    """The one line saying how much of an attempt's log was dropped past the cap.

    Attributes:
        tenant: The run's tenant.
        attempt: Run, task and attempt.
        line: The line, its ``seq`` that of the first dropped line.
    """

    tenant: str
    attempt: AttemptKey
    line: LogLine

    @property
    def chunk_id(self) -> str:
        """The marker's chunk: one per attempt, its line rewritten as more is dropped."""
        return json.dumps([*self.attempt, "dropped"])


@dataclass(slots=True)
class WritePlan:
    """What to store for one batch of events.

    Attributes:
        chunks: New chunks, in the order they are to be positioned.
        markers: Markers to create or rewrite.
        attempts: The attempts' logs after the batch, for those that changed.
    """

    chunks: list[Chunk] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)
    attempts: dict[AttemptKey, AttemptLog] = field(default_factory=dict)


def most_positions(incoming: Iterable[IncomingLog]) -> dict[str, int]:
    """The most chunk positions a batch can take in each run, before reading anything.

    One chunk per event with lines and one marker per attempt: reserved while what is
    stored of the attempts is read, so the two round trips overlap. Positions a plan
    leaves unused are gaps, which readers step over (only the order counts).
    """
    counts: dict[str, int] = {}
    attempts: set[AttemptKey] = set()
    for event in incoming:
        if event.lines:
            run_id = event.attempt[0]
            counts[run_id] = counts.get(run_id, 0) + 1 + (event.attempt not in attempts)
            attempts.add(event.attempt)
    return counts


def marker_line(log: AttemptLog, cap_bytes: int) -> LogLine:
    """The marker line of an attempt whose log reached ``cap_bytes``."""
    seq, time = log.dropped_from or (log.last_seq, datetime.min)
    return LogLine(
        seq=seq,
        time=time,
        level="WARNING",
        message=(
            f"log cap of {cap_bytes} bytes reached: {log.dropped_lines} more lines "
            f"({log.dropped_bytes} bytes) dropped"
        ),
    )


def plan_writes(
    incoming: Iterable[IncomingLog],
    stored: dict[AttemptKey, AttemptLog],
    *,
    cap_bytes: int,
) -> WritePlan:
    """Decide what to store of a batch of events, given what is stored.

    Lines at or below their attempt's ``last_seq`` are copies (a redelivered event)
    and skipped; lines that would take an attempt's log past ``cap_bytes`` are
    dropped and counted in its marker.

    Args:
        incoming: The events' lines, in the order the events were consumed.
        stored: What is stored of the attempts concerned (absent: nothing yet).
        cap_bytes: Most bytes of messages kept per attempt.

    Returns:
        The chunks, markers and attempt logs to write.
    """
    plan = WritePlan()
    for event in incoming:
        log = plan.attempts.get(event.attempt) or stored.get(event.attempt) or AttemptLog()
        kept: list[LogLine] = []
        dropped_before = log.dropped_lines
        for line in sorted(event.lines, key=lambda line: line.seq):
            if line.seq <= log.last_seq:
                continue
            if log.dropped_lines == 0 and log.size + line.size <= cap_bytes:
                kept.append(line)
                log = replace(log, last_seq=line.seq, size=log.size + line.size)
            else:
                log = replace(
                    log,
                    last_seq=line.seq,
                    dropped_lines=log.dropped_lines + 1,
                    dropped_bytes=log.dropped_bytes + line.size,
                    dropped_from=log.dropped_from or (line.seq, line.time),
                )
        if kept:
            plan.chunks.append(Chunk(event.tenant, event.attempt, kept))
        if log.dropped_lines != dropped_before:
            plan.markers = [m for m in plan.markers if m.attempt != event.attempt]
            plan.markers.append(Marker(event.tenant, event.attempt, marker_line(log, cap_bytes)))
        plan.attempts[event.attempt] = log
    return plan


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
