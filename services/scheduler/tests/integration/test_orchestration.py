"""DAG shapes, retries, dead letters and compensation, end to end through Kafka."""

from __future__ import annotations

import json

import pytest

from interlock.common import topics
from interlock.common.testing import identity_headers
from interlock.events.v1 import definition_pb2, task_pb2

from .conftest import HEADERS, Scheduler, task

pytestmark = pytest.mark.integration


def always_complete(scheduled: task_pb2.TaskScheduled) -> tuple[str, object]:
    return ("complete", {"task": scheduled.task_id, "params": json.loads(scheduled.params_json)})


async def test_chain_runs_in_order_with_rendered_params(scheduler: Scheduler) -> None:
    worker = scheduler.worker
    worker.behavior = always_complete
    run_id = await worker.start_run(
        task("a", params={"src": "{{ input.source }}"}),
        task("b", "a", params={"from_a": "{{ tasks.a.output.params.src }}"}),
        task("c", "b"),
        input={"source": "s3://bucket"},
    )
    outcome = await worker.wait_outcome(run_id)
    assert outcome.type == topics.WORKFLOW_COMPLETED
    assert worker.scheduled(run_id) == [("a", 1), ("b", 1), ("c", 1)]
    b = worker.of(run_id, topics.TASK_SCHEDULED)[1]
    assert json.loads(b.params_json) == {"from_a": "s3://bucket"}
    assert json.loads(outcome.payload.output_json)["c"]["task"] == "c"


async def test_diamond_and_fan_out_fan_in(scheduler: Scheduler) -> None:
    worker = scheduler.worker
    worker.behavior = always_complete
    diamond = await worker.start_run(task("a"), task("b", "a"), task("c", "a"), task("d", "b", "c"))
    fan = await worker.start_run(
        task("root"),
        *(task(f"leaf{i}", "root") for i in range(5)),
        task("join", *(f"leaf{i}" for i in range(5))),
    )
    assert (await worker.wait_outcome(diamond)).type == topics.WORKFLOW_COMPLETED
    assert (await worker.wait_outcome(fan)).type == topics.WORKFLOW_COMPLETED
    order = [task_id for task_id, _ in worker.scheduled(diamond)]
    assert order[0] == "a" and order[-1] == "d" and sorted(order[1:3]) == ["b", "c"]
    order = [task_id for task_id, _ in worker.scheduled(fan)]
    assert order[0] == "root" and order[-1] == "join" and len(order) == 7


async def test_hundred_task_fan_out(scheduler: Scheduler) -> None:
    worker = scheduler.worker
    worker.behavior = always_complete
    leaves = [task(f"t{i:03d}", "start") for i in range(100)]
    run_id = await worker.start_run(task("start"), *leaves, task("end", *(t.id for t in leaves)))
    assert (await worker.wait_outcome(run_id, timeout_s=60)).type == topics.WORKFLOW_COMPLETED
    assert len(set(worker.scheduled(run_id))) == 102
    assert (
        await scheduler.pool.fetchval(
            "SELECT count(*) FROM tasks WHERE run_id = $1 AND status = 'succeeded'", run_id
        )
        == 102
    )


async def test_retry_then_success(scheduler: Scheduler) -> None:
    worker = scheduler.worker
    worker.behavior = lambda s: ("fail", True) if s.attempt < 3 else ("complete", {"ok": True})
    run_id = await worker.start_run(task("flaky"))
    assert (await worker.wait_outcome(run_id)).type == topics.WORKFLOW_COMPLETED
    assert worker.scheduled(run_id) == [("flaky", 1), ("flaky", 2), ("flaky", 3)]
    transitions = await scheduler.pool.fetch(
        "SELECT to_status, attempt FROM transitions WHERE run_id = $1 AND task_id = 'flaky'"
        " ORDER BY id",
        run_id,
    )
    assert [(r["to_status"], r["attempt"]) for r in transitions][:5] == [
        ("scheduled", 0),
        ("running", 1),
        ("failed", 1),
        ("retrying", 1),
        ("scheduled", 1),
    ]


async def test_exhaustion_dead_letters_then_replay_finishes_the_run(scheduler: Scheduler) -> None:
    worker = scheduler.worker
    replayed = set()
    worker.behavior = lambda s: (
        ("complete", {}) if s.task_id != "bad" or s.task_id in replayed else ("fail", True)
    )
    run_id = await worker.start_run(task("ok"), task("bad", "ok"), task("after", "bad"))
    outcome = await worker.wait_outcome(run_id)
    assert outcome.type == topics.WORKFLOW_FAILED
    assert outcome.payload.failed_task_id == "bad"
    (dead,) = worker.of(run_id, topics.TASK_DEAD_LETTERED)
    assert dead.attempts == 3 and dead.last_error.type == "RuntimeError"

    listed = await scheduler.client.get(
        "/api/v1/dead-letters", params={"run_id": run_id}, headers=HEADERS
    )
    assert listed.status_code == 200
    (letter,) = listed.json()["items"]
    assert letter["id"] == dead.dead_letter_id
    assert letter["attempts"] == 3 and "RuntimeError: boom" in letter["traceback_excerpt"]

    other = identity_headers("tenant-b", subject="user-1", roles=["operator"])
    denied = await scheduler.client.post(
        f"/api/v1/dead-letters/{letter['id']}/replay", headers=other
    )
    assert denied.status_code == 404

    replayed.add("bad")
    replay = await scheduler.client.post(
        f"/api/v1/dead-letters/{letter['id']}/replay", headers=HEADERS
    )
    assert replay.status_code == 202, replay.text
    assert replay.json()["attempt"] == 4
    await worker.wait_for(
        lambda: any(e.run_id == run_id and e.type == topics.WORKFLOW_COMPLETED for e in worker.seen)
    )
    assert await scheduler.run_status(run_id) == "succeeded"


async def test_dead_letter_listing_paginates_and_deletes(scheduler: Scheduler) -> None:
    worker = scheduler.worker
    worker.behavior = lambda s: ("fail", False)
    runs = [await worker.start_run(task("x")) for _ in range(3)]
    for run_id in runs:
        await worker.wait_outcome(run_id)
    first = await scheduler.client.get("/api/v1/dead-letters?page_size=2", headers=HEADERS)
    assert len(first.json()["items"]) == 2 and first.json()["next_page_token"]
    second = await scheduler.client.get(
        "/api/v1/dead-letters",
        params={"page_size": 2, "page_token": first.json()["next_page_token"]},
        headers=HEADERS,
    )
    ids = {item["id"] for item in first.json()["items"] + second.json()["items"]}
    assert len(ids) == 3 and second.json()["next_page_token"] is None
    bad_token = await scheduler.client.get("/api/v1/dead-letters?page_token=zz", headers=HEADERS)
    assert bad_token.status_code == 400
    assert bad_token.headers["content-type"] == "application/problem+json"
    other_filters = await scheduler.client.get(
        "/api/v1/dead-letters",
        params={"page_token": first.json()["next_page_token"], "task_type": "x"},
        headers=HEADERS,
    )
    assert other_filters.status_code == 400
    assert other_filters.json()["type"].endswith("invalid-page-token")
    letter_id = next(iter(ids))
    assert (
        await scheduler.client.delete(f"/api/v1/dead-letters/{letter_id}", headers=HEADERS)
    ).status_code == 204
    assert (
        await scheduler.client.delete(f"/api/v1/dead-letters/{letter_id}", headers=HEADERS)
    ).status_code == 404
    assert (await scheduler.client.get("/api/v1/dead-letters")).status_code == 401


async def test_compensations_run_in_reverse_order(scheduler: Scheduler) -> None:
    worker = scheduler.worker
    worker.behavior = lambda s: ("fail", False) if s.task_id == "charge" else ("complete", {})

    def comp(name: str) -> definition_pb2.CompensationSpec:
        return definition_pb2.CompensationSpec(
            type="noop", params_json=json.dumps({"undo": name}).encode()
        )

    run_id = await worker.start_run(
        task("reserve", compensate=comp("reserve")),
        task("ship", "reserve", compensate=comp("ship")),
        task("charge", "ship"),
    )
    assert (await worker.wait_outcome(run_id)).type == topics.WORKFLOW_FAILED
    await worker.wait_for(lambda: ("compensate:reserve", 1) in worker.scheduled(run_id))
    order = [t for t, _ in worker.scheduled(run_id) if t.startswith("compensate:")]
    assert order == ["compensate:ship", "compensate:reserve"]
    params = [json.loads(p.params_json) for p in worker.of(run_id, topics.TASK_SCHEDULED)]
    assert params[-2:] == [{"undo": "ship"}, {"undo": "reserve"}]
