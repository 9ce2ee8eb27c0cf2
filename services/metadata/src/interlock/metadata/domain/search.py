"""Search requests over execution documents, and the summary a console's overview shows."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from interlock.common.statuses import RunStatus
from interlock.metadata.domain.executions import keywords_of

__all__ = [
    "MAX_QUERY_WORDS",
    "CreationWindows",
    "OrderBy",
    "Search",
    "Summary",
    "Window",
    "WorkflowSummary",
    "summarize",
]

MAX_QUERY_WORDS = 10
"""Words ``q`` may hold."""


class OrderBy(StrEnum):
    """How a search is sorted; ties are broken by run id, in the same direction."""

    CREATED_AT_DESC = "created_at desc"
    DURATION_DESC = "duration desc"
    """Finished runs only (a running run has no duration yet)."""


@dataclass(frozen=True, kw_only=True)
class Search:
    """One search: every filter given must hold (repeated ``status`` values: any of them).

    Attributes:
        tenant: The caller's tenant; only its runs are seen.
        workflow: Workflow name.
        statuses: Run statuses.
        labels: ``key=value`` pairs the run's labels must all hold.
        task_type: A task of this type.
        error_type: An attempt, dead letter or run failure with this error type.
        created_after, created_before, finished_after, finished_before: Time bounds
            (after: inclusive, before: exclusive).
        q: Words that must all appear among the run's search keywords.
        order_by: Sort order.
    """

    tenant: str
    workflow: str | None = None
    statuses: tuple[RunStatus, ...] = ()
    labels: tuple[str, ...] = ()
    task_type: str | None = None
    error_type: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    finished_after: datetime | None = None
    finished_before: datetime | None = None
    q: str | None = None
    order_by: OrderBy = OrderBy.CREATED_AT_DESC

    @property
    def words(self) -> list[str]:
        """The words of ``q``, deduplicated, as the documents' keywords hold them."""
        return list(dict.fromkeys(keywords_of(self.q or "")))

    def fingerprint(self) -> dict[str, Any]:
        """What a page token is bound to: every filter and the order (not the tenant)."""
        return {
            "workflow": self.workflow,
            "statuses": sorted(self.statuses),
            "labels": sorted(self.labels),
            "task_type": self.task_type,
            "error_type": self.error_type,
            "created": [self.created_after, self.created_before],
            "finished": [self.finished_after, self.finished_before],
            "q": self.words,
            "order_by": self.order_by.value,
        }


@dataclass(frozen=True)
class Window:
    """Creation times one query of a newest-first search reads: ``[start, end)``.

    Attributes:
        start: Earliest creation time (inclusive); ``None``: no bound.
        end: Latest creation time; ``None``: no bound.
        end_inclusive: ``end`` itself is in the window (a page cursor's time, whose
            ties are told apart by run id).
    """

    start: datetime | None
    end: datetime | None
    end_inclusive: bool = False


class CreationWindows:
    """The windows of creation time a newest-first search reads, newest first.

    The local MongoDB-protocol server reads every document an index lookup returns
    before it sorts and cuts a page, so a search by a common key would read all its
    runs. Reading it window by window (a key and a creation-time range are one
    lookup of the ``(search_keys, created_at)`` index) stops once a page is full.
    The first window is :attr:`FIRST_SPAN` long; each next one is sized from the rows
    the windows before found over the time they covered, to fill the page at once
    (a margin of :attr:`MARGIN`), at most :attr:`MAX_GROWTH` times what was covered
    (eight times when nothing was found). A window reaching :attr:`MAX_LOOK_BACK`
    back is the last: it has no lower bound but the search's own.

    Args:
        newest: The search's latest creation time (``created_before``, or the page
            cursor's time); ``None``: none, the first window starts at ``now``'s
            :attr:`FIRST_SPAN` ago and has no upper bound.
        newest_inclusive: ``newest`` itself is wanted.
        oldest: The search's earliest creation time (``created_after``, inclusive).
        now: The time the search runs.
        wanted: Rows the page needs.
    """

    FIRST_SPAN = timedelta(hours=1)
    MAX_GROWTH = 8
    MARGIN = 1.25
    MAX_LOOK_BACK = timedelta(days=365)

    def __init__(
        self,
        *,
        newest: datetime | None,
        newest_inclusive: bool = False,
        oldest: datetime | None,
        now: datetime,
        wanted: int,
    ) -> None:
        self._anchor = newest or now
        self._newest = newest
        self._newest_inclusive = newest_inclusive
        self._oldest = oldest
        self._wanted = wanted
        self._edge: datetime | None = None
        """Start of the last window given out (``None``: none yet, or it had no start)."""
        self._started = False

    def next(self, found: int) -> Window | None:
        """The next window, or ``None`` once the page is full or every time was read.

        Args:
            found: Rows the windows given out so far found.
        """
        if not self._started:
            self._started = True
            first = Window(self._anchor - self.FIRST_SPAN, self._newest, self._newest_inclusive)
            return self._give(first)
        edge = self._edge
        if found >= self._wanted or edge is None or self._at_oldest(edge):
            return None
        start = edge - self._span(self._anchor - edge, found)
        last = self._anchor - start >= self.MAX_LOOK_BACK
        return self._give(Window(None if last else start, edge))

    def _span(self, covered: timedelta, found: int) -> timedelta:
        """How far back the next window reaches, to fill the page at the rate found."""
        if found == 0:
            return covered * self.MAX_GROWTH
        needed = covered * ((self._wanted - found) / found * self.MARGIN)
        return min(max(needed, self.FIRST_SPAN), covered * self.MAX_GROWTH)

    def _at_oldest(self, edge: datetime) -> bool:
        return self._oldest is not None and edge <= self._oldest

    def _give(self, window: Window) -> Window:
        """``window``, starting no earlier than the search's own start; remembered."""
        start = window.start
        if self._oldest is not None and (start is None or start <= self._oldest):
            start = self._oldest
        self._edge = start
        return Window(start, window.end, window.end_inclusive)


@dataclass(frozen=True, kw_only=True)
class WorkflowSummary:
    """One workflow's runs over the window."""

    workflow: str
    runs: int
    by_status: Mapping[str, int]
    success_rate: float | None
    """Succeeded among finished runs; ``None`` when none finished."""
    duration_ms_p50: int | None
    duration_ms_p95: int | None
    duration_ms_p99: int | None


@dataclass(frozen=True, kw_only=True)
class Summary:
    """Per workflow, the runs created in ``[since, until)``."""

    since: datetime
    until: datetime
    workflows: list[WorkflowSummary] = field(default_factory=list)


def summarize(
    runs: Iterable[tuple[str, str, int | None]], *, since: datetime, until: datetime
) -> Summary:
    """Summarize ``(workflow, status, duration_ms)`` rows, workflows by name."""
    statuses: dict[str, Counter[str]] = defaultdict(Counter)
    durations: dict[str, list[int]] = defaultdict(list)
    for workflow, status, duration_ms in runs:
        statuses[workflow][status] += 1
        if duration_ms is not None:
            durations[workflow].append(duration_ms)
    summaries = []
    for workflow in sorted(statuses):
        counts = statuses[workflow]
        finished = sum(
            counts[s] for s in (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)
        )
        ordered = sorted(durations[workflow])
        summaries.append(
            WorkflowSummary(
                workflow=workflow,
                runs=sum(counts.values()),
                by_status=dict(sorted(counts.items())),
                success_rate=counts[RunStatus.SUCCEEDED] / finished if finished else None,
                duration_ms_p50=_percentile(ordered, 50),
                duration_ms_p95=_percentile(ordered, 95),
                duration_ms_p99=_percentile(ordered, 99),
            )
        )
    return Summary(since=since, until=until, workflows=summaries)


def _percentile(ordered: list[int], percent: int) -> int | None:
    """Nearest-rank percentile of sorted values."""
    if not ordered:
        return None
    return ordered[max(0, math.ceil(percent / 100 * len(ordered)) - 1)]
