"""Validation problems, each located by a JSON Pointer into the document it is about."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

MAX_DETAIL_CHARS = 300
"""Longest detail an issue reports: messages that quote the offending value (a
10,000-item list) are cut, so an error never echoes a request back at full size."""


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem found in a document.

    Attributes:
        pointer: JSON Pointer (RFC 6901) of the offending value, e.g. ``/tasks/2/id``;
            ``""`` is the whole document.
        detail: What is wrong, for a human.
    """

    pointer: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        """The issue as a problem+json ``errors`` entry."""
        detail = self.detail
        if len(detail) > MAX_DETAIL_CHARS:
            detail = detail[: MAX_DETAIL_CHARS - 1] + "…"
        return {"pointer": self.pointer[:MAX_DETAIL_CHARS], "detail": detail}


def pointer(*parts: str | int) -> str:
    """Join path parts into a JSON Pointer, escaping ``~`` and ``/``."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts)


def sorted_issues(issues: Iterable[Issue]) -> list[Issue]:
    """The issues without repeats, in a stable order (by pointer, then detail)."""
    return sorted(set(issues), key=lambda issue: (issue.pointer, issue.detail))
