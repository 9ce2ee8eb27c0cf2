"""Runs: starts, reads and control (``/api/v1/runs``, ``/api/v1/workflows/{name}/runs``)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from urllib.parse import quote

from interlock.client._calls import IDEMPOTENCY_HEADER, Call, PagedCall, get_pages, model, page_of
from interlock.client._models import ApiModel
from interlock.client._operations import Mode, Resource, operation, paged
from interlock.client._workflows import DEFAULT_PAGE_SIZE

ENDED_STATUSES = frozenset({"succeeded", "failed", "cancelled"})
"""Run statuses after which nothing changes unless someone retries the run."""


class RunSummary(ApiModel):
    """A run without its tasks."""

    run_id: str
    workflow: str
    version: int
    status: str
    """``pending``, ``running``, ``paused``, ``succeeded``, ``failed`` or ``cancelled``."""
    created_at: datetime
    finished_at: datetime | None = None

    @property
    def ended(self) -> bool:
        """Whether the run has ended (succeeded, failed or cancelled)."""
        return self.status in ENDED_STATUSES


class TaskView(ApiModel):
    """A task of a run."""

    id: str
    status: str
    """``pending``, ``scheduled``, ``running``, ``succeeded``, ``failed``, ``retrying``,
    ``dead_lettered``, ``cancelled`` or ``skipped``."""
    attempts: int
    scheduled_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    output: Any = None
    """Only once the task succeeded."""
    error: dict[str, Any] | None = None
    """The latest failure: ``{type, message, retryable}``."""


class Run(RunSummary):
    """A run with its input and its tasks."""

    input: Any = None
    tasks: list[TaskView] = []


def _run_path(run_id: str) -> str:
    return f"/api/v1/runs/{quote(run_id, safe='')}"


class Runs(Resource[Mode]):
    """Start runs, read them, cancel, pause, resume and retry them."""

    @operation
    def start(
        self, workflow: str, input: Any = None, *, idempotency_key: str | None = None
    ) -> Call[Run]:
        """Start a run of the workflow's latest version.

        Args:
            workflow: The workflow's name.
            input: The run's input (any JSON value). Default: none.
            idempotency_key: A start repeated with the same key returns the first one's
                run instead of starting another. Default: a new random key per call,
                which makes the client's own retries of this call safe.
        """
        key = idempotency_key or str(uuid.uuid4())
        return Call(
            method="POST",
            path=f"/api/v1/workflows/{quote(workflow, safe='')}/runs",
            json={"input": input},
            headers={IDEMPOTENCY_HEADER: key},
            parse=model(Run),
        )

    @operation
    def get(self, run_id: str) -> Call[Run]:
        """A run with its tasks."""
        return Call(method="GET", path=_run_path(run_id), parse=model(Run))

    @operation
    def cancel(self, run_id: str, reason: str = "") -> Call[Run]:
        """Cancel a run (409 :class:`Conflict` once it ended). Default reason: none."""
        return self._control(run_id, "cancel", reason)

    @operation
    def pause(self, run_id: str, reason: str = "") -> Call[Run]:
        """Pause a run: running tasks finish, nothing new starts. Default reason: none."""
        return self._control(run_id, "pause", reason)

    @operation
    def resume(self, run_id: str, reason: str = "") -> Call[Run]:
        """Resume a paused run. Default reason: none."""
        return self._control(run_id, "resume", reason)

    @operation
    def retry(self, run_id: str, reason: str = "") -> Call[Run]:
        """Retry the failed tasks of a failed run. Default reason: none."""
        return self._control(run_id, "retry", reason)

    def _control(self, run_id: str, action: str, reason: str) -> Call[Run]:
        return Call(
            method="POST",
            path=f"{_run_path(run_id)}/{action}",
            json={"reason": reason},
            parse=model(Run),
        )

    @paged
    def list(
        self,
        *,
        workflow: str | None = None,
        status: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> PagedCall[RunSummary]:
        """Runs, newest first, every page.

        Args:
            workflow: Only this workflow's runs. Default: all.
            status: Only runs in this status. Default: all.
            created_after: Only runs created after this time. Default: no bound.
            created_before: Only runs created before this time. Default: no bound.
            page_size: Items per request. Default: 50.
        """
        params = {
            "workflow": workflow,
            "status": status,
            "created_after": created_after.isoformat() if created_after else None,
            "created_before": created_before.isoformat() if created_before else None,
            "page_size": page_size,
        }
        return get_pages("/api/v1/runs", page_of(RunSummary, "runs"), params)
