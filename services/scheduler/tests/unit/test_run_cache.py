"""The in-memory runs: valid only at the version they were kept with, open runs only."""

from datetime import UTC, datetime

from interlock.events.v1 import definition_pb2, workflow_pb2
from interlock.scheduler.domain.run import RunState
from interlock.scheduler.run_cache import RunCache

NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)


def open_run(run_id: str) -> RunState:
    started = workflow_pb2.WorkflowStarted(
        workflow_name="wf",
        definition=definition_pb2.WorkflowDefinition(
            name="wf", tasks=[definition_pb2.TaskSpec(id="a", type="noop")]
        ),
    )
    run = RunState(run_id=run_id, tenant="t", definition=started)
    run.start(NOW)
    return run


def test_a_kept_run_is_returned_only_at_its_version() -> None:
    cache = RunCache()
    run = open_run("r1")
    cache.put("r1", 7, run)
    assert cache.get("r1", 7) is run
    assert cache.get("r1", 8) is None  # written elsewhere since
    assert cache.get("r1", 7) is None  # and forgotten at once
    assert cache.get("unknown", 7) is None


def test_finished_runs_are_not_kept() -> None:
    cache = RunCache()
    run = open_run("r1")
    cache.put("r1", 1, run)
    run.cancel("stop", "user-1", NOW)
    cache.put("r1", 2, run)
    assert len(cache) == 0


def test_forget_drops_runs() -> None:
    cache = RunCache()
    cache.put("r1", 1, open_run("r1"))
    cache.forget(["r1", "never-kept"])
    assert cache.get("r1", 1) is None
