"""Search requests over execution documents, and the summary a console's overview shows."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from interlock.common.statuses import RunStatus
from interlock.metadata.domain.executions import keywords_of

__all__ = ["MAX_QUERY_WORDS", "OrderBy", "Search", "Summary", "WorkflowSummary", "summarize"]

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
