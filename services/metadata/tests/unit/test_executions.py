"""Execution documents converge whatever the order, duplication and batching of facts."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from interlock.common.statuses import RunStatus
from interlock.metadata.domain import (
    AttemptFinished,
    AttemptHeartbeat,
    AttemptScheduled,
    AttemptStarted,
    Fact,
    RunControlled,
    RunEnded,
    RunStarted,
    TaskDeadLettered,
    apply,
)

RETENTION = timedelta(days=90)
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
RUN = "run-1"
TENANT = "acme"
TIMEOUT = {"type": "TimeoutError", "message": "fetch took longer than 5s", "retryable": True}
REFUSED = {"type": "HTTPStatusError", "message": "403 Forbidden from billing", "retryable": False}


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def common(n: int, seconds: float) -> dict[str, Any]:
    return {"event_id": f"e{n}", "tenant": TENANT, "run_id": RUN, "time": at(seconds)}


def run_facts() -> list[Fact]:
    """A run: fetch fails once then succeeds; charge fails for good; the run fails."""
    return [
        RunStarted(
            **common(1, 0),
            workflow="billing",
            version=3,
            labels={"team": "payments"},
            input_json='{"month": "2026-11"}',
            task_types={"fetch": "http", "charge": "http", "notify": "noop"},
        ),
        AttemptScheduled(**common(2, 1), task_id="fetch", attempt=1, task_type="http"),
        AttemptStarted(**common(3, 2), task_id="fetch", attempt=1, worker_id="w1"),
        AttemptHeartbeat(**common(4, 3), task_id="fetch", attempt=1, worker_id="w1"),
        AttemptFinished(
            **common(5, 7),
            task_id="fetch",
            attempt=1,
            worker_id="w1",
            started_at=at(2),
            error=TIMEOUT,
        ),
        RunControlled(**common(6, 8), action="pause"),
        RunControlled(**common(7, 9), action="resume"),
        AttemptScheduled(**common(8, 10), task_id="fetch", attempt=2, task_type="http"),
        AttemptFinished(
            **common(9, 12),
            task_id="fetch",
            attempt=2,
            worker_id="w2",
            started_at=at(11),
            output_bytes=42,
        ),
        AttemptScheduled(**common(10, 13), task_id="charge", attempt=1, task_type="http"),
        AttemptStarted(**common(11, 14), task_id="charge", attempt=1, worker_id="w1"),
        AttemptFinished(
            **common(12, 15),
            task_id="charge",
            attempt=1,
            worker_id="w1",
            started_at=at(14),
            error=REFUSED,
        ),
        TaskDeadLettered(**common(13, 15.5), task_id="charge", attempts=1, error=REFUSED),
        RunEnded(
            **common(14, 16),
            status=RunStatus.FAILED,
            workflow="billing",
            version=3,
            failed_task_id="charge",
            error=REFUSED,
        ),
    ]


def fold(batches: list[list[Fact]]) -> dict[str, Any]:
    document = None
    for batch in batches:
        document = apply(document, batch, retention=RETENTION)
    assert document is not None
    return document


REFERENCE = fold([run_facts()])


def test_the_document_shows_every_attempt_with_its_error() -> None:
    doc = REFERENCE
    assert doc["status"] == "failed"
    assert doc["finished_at"] == at(16)
    assert doc["duration_ms"] == 16_000
    assert doc["expires_at"] == at(16) + RETENTION
    tasks = {task["id"]: task for task in doc["tasks"]}
    assert [task["id"] for task in doc["tasks"]] == ["fetch", "charge", "notify"]
    fetch = tasks["fetch"]
    assert fetch["status"] == "succeeded"
    assert [a["outcome"] for a in fetch["attempts"]] == ["failed", "succeeded"]
    assert fetch["attempts"][0]["error"] == TIMEOUT
    assert fetch["attempts"][0]["queue_wait_ms"] == 1000
    assert fetch["attempts"][0]["duration_ms"] == 5000
    assert fetch["attempts"][0]["last_heartbeat_at"] == at(3)
    assert fetch["attempts"][1]["output_bytes"] == 42
    assert tasks["charge"]["status"] == "dead_lettered"
    assert tasks["charge"]["dead_lettered"]["error"] == REFUSED
    assert tasks["notify"]["status"] == "pending"
    keys = set(doc["search_keys"])
    assert {"error:HTTPStatusError", "error:TimeoutError"} <= keys
    words = {"billing", "payments", "charge", "forbidden", "timeouterror"}
    assert {f"q:{word}" for word in words} <= keys
    assert "label:team=payments" in keys
    assert {"type:http", "type:noop", "status:failed:billing"} <= keys
    assert [entry["event"] for entry in doc["timeline"]][:3] == [
        "started",
        "task.scheduled",
        "task.started",
    ]


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_any_order_duplication_and_batching_converges(data: st.DataObject) -> None:
    facts = run_facts()
    repeated = data.draw(st.lists(st.sampled_from(facts), max_size=10))
    shuffled = data.draw(st.permutations(facts + repeated))
    cuts = sorted(data.draw(st.sets(st.integers(0, len(shuffled)), max_size=5)))
    bounds = [0, *cuts, len(shuffled)]
    batches = [shuffled[a:b] for a, b in itertools.pairwise(bounds) if a < b]
    assert fold(batches) == REFERENCE


def test_a_late_start_never_turns_a_succeeded_attempt_back_to_running() -> None:
    facts = run_facts()
    late = AttemptStarted(**common(99, 30), task_id="fetch", attempt=2, worker_id="w9")
    doc = apply(REFERENCE, [late], retention=RETENTION)
    fetch = next(task for task in doc["tasks"] if task["id"] == "fetch")
    assert fetch["status"] == "succeeded"
    assert fetch["attempts"][1]["started_at"] == at(11)
    assert len(facts) == 14


def test_retry_reopens_a_failed_run_until_it_ends_again() -> None:
    retried = apply(
        REFERENCE, [RunControlled(**common(20, 20), action="retry")], retention=RETENTION
    )
    assert retried["status"] == "running"
    assert retried["finished_at"] is None
    assert retried["expires_at"] is None
    done = apply(
        retried, [RunEnded(**common(21, 25), status=RunStatus.SUCCEEDED)], retention=RETENTION
    )
    assert done["status"] == "succeeded"
    assert done["duration_ms"] == 25_000


def test_events_of_another_tenant_are_ignored() -> None:
    stranger = RunEnded(
        event_id="x", tenant="intruder", run_id=RUN, time=at(5), status=RunStatus.CANCELLED
    )
    doc = apply(REFERENCE, [stranger], retention=RETENTION)
    assert doc["status"] == "failed"


def test_a_large_input_is_left_out() -> None:
    started = RunStarted(
        **common(1, 0), workflow="w", version=1, input_json='"' + "x" * 70_000 + '"'
    )
    doc = apply(None, [started], retention=RETENTION)
    assert doc["input_json"] is None
    assert doc["input_truncated"] is True
    assert doc["status"] == "pending"
