"""The message a subscription receives: ``{type, timestamp, data}``, built from run facts.

The same body is a webhook's JSON and the source of an email's text, so both channels
say the same thing. Times are RFC 3339 UTC with milliseconds; links point at the run
through the gateway.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from interlock.notification.domain.subscriptions import EventName

TEST_EVENT = "interlock.test"
"""The ``type`` of the message ``POST /api/v1/subscriptions/{id}/test`` sends."""


@dataclass(frozen=True, kw_only=True)
class FailedTask:
    """A task that could not succeed, with its last error."""

    task_id: str
    error_type: str
    message: str
    attempts: int | None = None


@dataclass(frozen=True, kw_only=True)
class RunFacts:
    """What the notification service knows about a run when an event about it arrives.

    Attributes:
        run_id: The run.
        workflow: Its workflow's name.
        version: The workflow version it runs.
        status: Its status after the event (``running``, ``succeeded``, ``failed``,
            ``cancelled``).
        started_at: When it started, when known (from its ``workflow.started``).
        finished_at: When it ended, for outcome events.
        failed_tasks: The tasks whose failure the event reports.
        reason: Why it was cancelled, for ``run.cancelled``.
    """

    run_id: str
    workflow: str
    version: int
    status: str
    started_at: datetime | None = None
    finished_at: datetime | None = None
    failed_tasks: tuple[FailedTask, ...] = ()
    reason: str = ""


def rfc3339(time: datetime | None) -> str | None:
    """``time`` as RFC 3339 UTC with milliseconds, e.g. ``2026-01-01T09:00:00.000Z``."""
    if time is None:
        return None
    return time.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def run_message(
    event: EventName, time: datetime, facts: RunFacts, *, public_url: str
) -> dict[str, Any]:
    """The body of the message about ``event`` on the run ``facts`` describes."""
    duration_ms = None
    if facts.started_at is not None and facts.finished_at is not None:
        duration_ms = max(0, round((facts.finished_at - facts.started_at).total_seconds() * 1000))
    data: dict[str, Any] = {
        "run_id": facts.run_id,
        "workflow": facts.workflow,
        "version": facts.version,
        "status": facts.status,
        "started_at": rfc3339(facts.started_at),
        "finished_at": rfc3339(facts.finished_at),
        "duration_ms": duration_ms,
        "failed_tasks": [
            {
                "task_id": task.task_id,
                "attempts": task.attempts,
                "error": {"type": task.error_type, "message": task.message},
            }
            for task in facts.failed_tasks
        ],
        "links": {"run": f"{public_url.rstrip('/')}/api/v1/runs/{facts.run_id}"},
    }
    if facts.reason:
        data["reason"] = facts.reason
    return {"type": event.value, "timestamp": rfc3339(time), "data": data}


def test_message(subscription_id: str, name: str, time: datetime) -> dict[str, Any]:
    """The body of a test message for the subscription ``subscription_id``."""
    return {
        "type": TEST_EVENT,
        "timestamp": rfc3339(time),
        "data": {
            "subscription_id": subscription_id,
            "name": name,
            "message": "A test message from Interlock: this subscription reaches you.",
        },
    }
