"""Which offset of a partition may be committed while tasks finish out of order."""

from __future__ import annotations

__all__ = ["PartitionOffsets"]


class PartitionOffsets:
    """Tracks the records of one partition from fetch to published outcome.

    Tasks of one partition finish in any order, but a committed offset means "every
    record before it is done". The committable offset is therefore the lowest record
    still pending, or the one after the last record seen when none is pending.
    """

    def __init__(self) -> None:
        self._pending: set[int] = set()
        self._next: int | None = None
        self._committed: int | None = None

    def received(self, offset: int) -> None:
        """Record that ``offset`` was fetched and is not done yet."""
        self._pending.add(offset)
        if self._next is None or offset >= self._next:
            self._next = offset + 1

    def done(self, offset: int) -> None:
        """Record that ``offset``'s outcome was published (or it needs none)."""
        self._pending.discard(offset)

    @property
    def pending(self) -> int:
        """How many fetched records are not done."""
        return len(self._pending)

    def committable(self) -> int | None:
        """Return the offset to commit, or ``None`` when nothing new can be committed."""
        if self._next is None:
            return None
        offset = min(self._pending) if self._pending else self._next
        if self._committed is not None and offset <= self._committed:
            return None
        return offset

    def committed(self, offset: int) -> None:
        """Record that ``offset`` was committed."""
        if self._committed is None or offset > self._committed:
            self._committed = offset
