"""The ``Range`` header of a download (RFC 9110 §14): one byte range, or the whole."""

from __future__ import annotations

import re
from dataclasses import dataclass

from interlock.artifact.domain.errors import RangeNotSatisfiableError

__all__ = ["ByteRange", "parse_range"]

_SINGLE = re.compile(r"bytes=(\d*)-(\d*)")


@dataclass(frozen=True, slots=True)
class ByteRange:
    """Bytes ``start`` to ``end`` inclusive of an object of ``size`` bytes."""

    start: int
    end: int
    size: int

    @property
    def length(self) -> int:
        """How many bytes the range holds."""
        return self.end - self.start + 1

    @property
    def content_range(self) -> str:
        """The ``Content-Range`` header of a 206 answer."""
        return f"bytes {self.start}-{self.end}/{self.size}"


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The range ``header`` asks for in an object of ``size`` bytes.

    Returns:
        The range, or ``None`` for the whole object: no header, a header this parser
        does not take (several ranges, another unit; RFC 9110 lets a server ignore
        them), or a range that covers everything anyway.

    Raises:
        RangeNotSatisfiableError: The range starts at or beyond the end (416).
    """
    if header is None:
        return None
    match = _SINGLE.fullmatch(header.strip())
    if match is None or match.group(1) == match.group(2) == "":
        return None
    first, last = match.group(1), match.group(2)
    if first == "":  # the last N bytes
        suffix = int(last)
        if suffix == 0:
            raise RangeNotSatisfiableError("a suffix range of 0 bytes selects nothing")
        start, end = max(size - suffix, 0), size - 1
    else:
        start = int(first)
        end = size - 1 if last == "" else min(int(last), size - 1)
        if int(first) > (int(last) if last else start):
            return None  # an invalid range is ignored (RFC 9110 §14.1.1)
    if start >= size:
        raise RangeNotSatisfiableError(f"the artifact has {size} bytes")
    if start == 0 and end == size - 1:
        return None
    return ByteRange(start=start, end=end, size=size)
