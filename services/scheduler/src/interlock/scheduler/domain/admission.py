"""Concurrency limits: which waiting runs may start now, and why the others wait.

Two limits hold a run ``pending`` when it arrives: its workflow's
``max_concurrent_runs`` (runs of that workflow, any version, running or paused at once
in its tenant) and the tenant's limit from the scheduler's settings (all its runs).
Waiting runs start in the order they were requested as slots free up; a run held by its
own workflow's limit does not hold back another workflow's runs behind it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from interlock.events.v1 import workflow_pb2

_tenant_limit = 0


def configure_tenant_limit(limit: int) -> None:
    """Set the most runs a tenant may have running at once (0: no limit), from settings."""
    global _tenant_limit
    _tenant_limit = limit


def tenant_limit() -> int:
    """The tenant limit in force (0: none)."""
    return _tenant_limit


def is_limited(started: workflow_pb2.WorkflowStarted) -> bool:
    """Whether a run must wait for a slot before it starts (some limit applies to it)."""
    return _tenant_limit > 0 or started.definition.max_concurrent_runs > 0


@dataclass(frozen=True)
class WaitingRun:
    """A run held for a slot, as the admission sees it."""

    run_id: str
    workflow: str
    max_runs: int
    """Its workflow's ``max_concurrent_runs``; 0: none."""
    reason: str = ""
    """Why it waits, as last told."""


@dataclass(frozen=True)
class Admission:
    """What one admission pass decided."""

    admitted: list[str] = field(default_factory=list)
    """Runs to start now, in order."""
    reasons: dict[str, str] = field(default_factory=dict)
    """Runs that keep waiting for another reason than last told, with the new reason."""


def admit(waiting: Sequence[WaitingRun], active: Mapping[str, int], limit: int) -> Admission:
    """Give free slots to waiting runs in order.

    Args:
        waiting: One tenant's waiting runs, first requested first.
        active: The tenant's runs holding a slot, counted by workflow.
        limit: The tenant's limit; 0: none.
    """
    running = dict(active)
    total = sum(running.values())
    decided = Admission()
    for run in waiting:
        of_workflow = running.get(run.workflow, 0)
        if limit > 0 and total >= limit:
            reason = f"waiting for a slot: the tenant has {total} of its {limit} runs running"
        elif run.max_runs > 0 and of_workflow >= run.max_runs:
            reason = (
                f"waiting for a slot: {of_workflow} of {run.max_runs} runs of "
                f"{run.workflow!r} are running (max_concurrent_runs)"
            )
        else:
            decided.admitted.append(run.run_id)
            running[run.workflow] = of_workflow + 1
            total += 1
            continue
        if reason != run.reason:
            decided.reasons[run.run_id] = reason
    return decided
