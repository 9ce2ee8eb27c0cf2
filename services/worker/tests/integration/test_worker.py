"""The worker against a real broker: reports, classification, limits, heartbeats, cancel."""

import asyncio
import json
from datetime import UTC
from typing import Any, ClassVar

import pytest
from aiokafka.partitioner import DefaultPartitioner
from prometheus_client import generate_latest

from interlock.common import topics
from interlock.worker.attempts import Attempt
from interlock.worker.context import ArtifactRef, TaskContext
from interlock.worker.sdk import current_context, task

pytestmark = pytest.mark.integration


@task("tests.worker.logs")
def writes_logs(lines: int) -> dict[str, int]:
    ctx = current_context()
    for n in range(lines):
        ctx.logger.info("line %d of %s", n, ctx.task_id)
    return {"lines": lines}


@task("tests.worker.broken")
def broken() -> None:
    raise RuntimeError("database is down")


class Probe:
    """Counts how many probe tasks run at once."""

    running = 0
    most = 0


@task("tests.worker.probe")
async def probe(hold_ms: int) -> dict[str, int]:
    Probe.running += 1
    Probe.most = max(Probe.most, Probe.running)
    try:
        await asyncio.sleep(hold_ms / 1000)
    finally:
        Probe.running -= 1
    return {"held_ms": hold_ms}


async def test_a_task_is_started_then_completed_with_its_output(
    settings, running_worker, task_events, publish, kit: Any
) -> None:
    run = kit.new_run()
    async with running_worker(settings) as worker:
        await publish([kit.scheduled(run, "a", "sleep", {"duration": "100ms"})])
        done = await task_events.wait_outcome(run, "a")
        # Another topic: it may be consumed after the outcome.
        started = await kit.eventually(lambda: task_events.of(topics.TASK_STARTED, run, "a"))
    assert done.DESCRIPTOR.name == "TaskCompleted"
    assert json.loads(done.output_json) == {"slept_ms": 100}
    assert done.worker_id == worker.worker_id
    assert [(s.attempt, s.worker_id) for s in started] == [(1, worker.worker_id)]
    times = {e.type: e.time for e in task_events.events if e.run_id == run}
    assert times[topics.TASK_STARTED] <= times[topics.TASK_COMPLETED]
    assert done.started_at.ToDatetime(tzinfo=UTC) <= times[topics.TASK_COMPLETED]


async def test_a_task_done_at_once_reports_only_its_outcome(
    settings, running_worker, task_events, publish, kit: Any
) -> None:
    run = kit.new_run()
    instant = [f"instant-{n}" for n in range(3)]
    # One at a time: each next task starts as the previous one ends, within its step.
    async with running_worker(settings, max_in_flight=1) as worker:
        await publish(
            [kit.scheduled(run, task_id, "noop", {"x": 1}) for task_id in instant]
            + [kit.scheduled(run, "slow", "sleep", {"duration": "100ms"})]
        )
        outcomes = [await task_events.wait_outcome(run, task_id) for task_id in instant]
        # Same run, same partition, started after them: once the slow task's start is
        # here, the instant tasks' starts would be too.
        await kit.eventually(lambda: task_events.of(topics.TASK_STARTED, run, "slow"))
    for done in outcomes:
        assert done.DESCRIPTOR.name == "TaskCompleted"
        assert json.loads(done.output_json) == {"x": 1}
        assert done.worker_id == worker.worker_id
        assert done.HasField("started_at")
    assert [s.task_id for s in task_events.of(topics.TASK_STARTED, run)] == ["slow"]


async def test_each_queue_is_read_only_by_the_workers_serving_it(
    settings, running_worker, task_events, publish, kit: Any
) -> None:
    run = kit.new_run()
    gpu_tasks = [f"gpu-{n}" for n in range(6)]
    async with (
        running_worker(settings, worker_id="default-worker") as default,
        running_worker(settings, worker_id="gpu-worker", worker_queues=["gpu"]) as gpu,
    ):
        await publish(
            [kit.scheduled(run, task_id, "noop", queue="gpu") for task_id in gpu_tasks]
            + [kit.scheduled(run, "default-task", "noop")]
        )
        outcomes = {t: await task_events.wait_outcome(run, t) for t in [*gpu_tasks, "default-task"]}
        default_topics = {topic for topic, _ in default.task_assignment()}
        gpu_topics = {topic for topic, _ in gpu.task_assignment()}
    assert {outcomes[t].worker_id for t in gpu_tasks} == {"gpu-worker"}
    assert outcomes["default-task"].worker_id == "default-worker"
    prefix = settings.kafka_topic_prefix
    assert default_topics == {prefix + t for t in topics.queue_topics("")}
    assert gpu_topics == {prefix + t for t in topics.queue_topics("gpu")}


async def test_higher_priority_tasks_start_before_a_backlog_of_lower_ones(
    settings, running_worker, task_events, publish, kit: Any
) -> None:
    run = kit.new_run()
    backlog = [
        kit.scheduled(run, f"low-{n}", "sleep", {"duration_ms": 20}, priority=-5) for n in range(30)
    ]
    await publish(backlog)
    async with running_worker(settings, max_in_flight=1, prefetch=2):
        await kit.eventually(lambda: task_events.of(topics.TASK_STARTED, run))
        await publish(
            [kit.scheduled(run, "normal", "noop"), kit.scheduled(run, "urgent", "noop", priority=9)]
        )
        for event in backlog:
            await task_events.wait_outcome(run, event.payload.task_id)
        await task_events.wait_outcome(run, "normal")
    finished = [
        e.payload.task_id
        for e in sorted(task_events.events, key=lambda e: e.time)
        if e.type == topics.TASK_COMPLETED
    ]
    # Behind the prefetched few at most, never behind the backlog. Between the two no
    # order is asserted: on separate band topics, one may reach the worker a fetch
    # before the other.
    assert finished.index("urgent") < 8
    assert finished.index("normal") < 8


async def test_failures_are_classified_and_reported(
    settings, running_worker, task_events, publish, kit: Any
) -> None:
    run = kit.new_run()
    bad_json = kit.scheduled(run, "bad-json", "noop")
    bad_json.payload.params_json = b"{not json"
    async with running_worker(settings):
        await publish(
            [
                kit.scheduled(run, "retryable", "fail", {"message": "try again"}),
                kit.scheduled(run, "final", "fail", {"message": "give up", "retryable": False}),
                kit.scheduled(run, "unknown", "no-such-type"),
                kit.scheduled(run, "bad-params", "sleep", {"duration": "forever"}),
                bad_json,
                kit.scheduled(run, "timeout", "sleep", {"duration": "10s"}, timeout_ms=100),
                kit.scheduled(run, "crash", "python", {"function": "tests.worker.broken"}),
            ]
        )
        outcomes = {
            task_id: await task_events.wait_outcome(run, task_id)
            for task_id in (
                "retryable",
                "final",
                "unknown",
                "bad-params",
                "bad-json",
                "timeout",
                "crash",
            )
        }
    errors = {task_id: (o.error.type, o.error.retryable) for task_id, o in outcomes.items()}
    assert errors == {
        "retryable": ("IntentionalFailure", True),
        "final": ("IntentionalFailure", False),
        "unknown": ("UnknownTaskType", False),
        "bad-params": ("InvalidParams", False),
        "bad-json": ("InvalidParams", False),
        "timeout": ("TaskTimeout", True),
        "crash": ("RuntimeError", True),
    }
    assert outcomes["final"].error.message == "give up"
    assert "database is down" in outcomes["crash"].error.traceback_excerpt
    assert all(o.worker_id for o in outcomes.values())


def most_overlapping(intervals: list[tuple[float, float]]) -> int:
    """The largest number of [start, end) intervals covering one instant."""
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    most = current = 0
    for _, step in edges:
        current += step
        most = max(most, current)
    return most


async def test_concurrency_limits_hold_under_load(
    settings, running_worker, task_events, publish, kit: Any
) -> None:
    Probe.running = Probe.most = 0
    runs = [kit.new_run() for _ in range(6)]
    events = []
    for n in range(30):
        run = runs[n % len(runs)]
        if n % 2:
            events.append(
                kit.scheduled(
                    run,
                    f"p{n}",
                    "python",
                    {"function": "tests.worker.probe", "args": {"hold_ms": 40}},
                )
            )
        else:
            events.append(kit.scheduled(run, f"s{n}", "sleep", {"duration_ms": 40}))
    await publish(events)
    async with running_worker(settings, max_in_flight=4, max_in_flight_per_type={"python": 2}):
        for event in events:
            done = await task_events.wait_outcome(event.run_id, event.payload.task_id)
            assert done.DESCRIPTOR.name == "TaskCompleted", done
    completions = [e for e in task_events.events if e.type == topics.TASK_COMPLETED]
    intervals = [
        (e.payload.started_at.ToDatetime().timestamp(), e.time.timestamp()) for e in completions
    ]
    assert Probe.most == 2
    assert 2 <= most_overlapping(intervals) <= 4


async def test_heartbeats_and_log_lines_are_published_while_a_task_runs(
    settings, running_worker, task_events, publish, kit: Any
) -> None:
    run = kit.new_run()
    async with running_worker(settings, heartbeat_interval_ms=100):
        await publish(
            [
                kit.scheduled(run, "nap", "sleep", {"duration": "800ms"}),
                kit.scheduled(
                    run, "chatty", "python", {"function": "tests.worker.logs", "args": {"lines": 3}}
                ),
            ]
        )
        await task_events.wait_outcome(run, "nap")
        await task_events.wait_outcome(run, "chatty")
        await kit.eventually(lambda: task_events.of(topics.TASK_LOG, run, "chatty"))
        beats = await kit.eventually(
            lambda: (
                len(task_events.of(topics.TASK_HEARTBEAT, run, "nap")) >= 3
                and task_events.of(topics.TASK_HEARTBEAT, run, "nap")
            )
        )
    assert all(b.attempt == 1 and b.worker_id for b in beats)
    assert max(json.loads(b.details_json)["slept_ms"] for b in beats if b.details_json) > 0
    lines = [line for log in task_events.of(topics.TASK_LOG, run, "chatty") for line in log.lines]
    assert [line.message for line in lines] == [f"line {n} of chatty" for n in range(3)]
    assert {line.level for line in lines} == {"INFO"}


async def test_log_lines_are_published_as_written_not_at_the_end(
    settings, running_worker, task_events, publish, kit: Any
) -> None:
    run = kit.new_run()
    async with running_worker(settings, heartbeat_interval_ms=60_000, drain_timeout_ms=0):
        await publish(
            [kit.scheduled(run, "talk", "echo", {"lines": ["first", "second"], "interval": "60s"})]
        )
        logs = await kit.eventually(lambda: task_events.of(topics.TASK_LOG, run, "talk"))
        assert task_events.of(topics.TASK_COMPLETED, run, "talk") == []
    [line] = [line for log in logs for line in log.lines]
    assert (line.seq, line.level, line.message) == (1, "INFO", "first")


async def test_a_running_task_is_aborted_when_its_run_is_cancelled(
    settings, running_worker, task_events, publish, kit: Any
) -> None:
    run, other = kit.new_run(), kit.new_run()
    async with running_worker(settings) as worker:
        await publish(
            [
                kit.scheduled(run, "long", "sleep", {"duration": "60s"}),
                kit.scheduled(other, "long", "sleep", {"duration": "1s"}),
            ]
        )
        await kit.eventually(lambda: task_events.of(topics.TASK_STARTED, run, "long"))
        await kit.eventually(lambda: worker.cancellations.assignment())
        await publish([kit.cancelled(run)])
        aborted = await task_events.wait_outcome(run, "long", timeout_s=20)
        survivor = await task_events.wait_outcome(other, "long", timeout_s=20)
        await publish([kit.scheduled(run, "late", "noop")])
        late = await task_events.wait_outcome(run, "late")
    assert (aborted.error.type, aborted.error.retryable) == ("TaskCancelled", False)
    assert aborted.error.message == "stopped by test"
    assert survivor.DESCRIPTOR.name == "TaskCompleted"
    assert (late.error.type, late.error.retryable) == ("TaskCancelled", False)
    assert task_events.of(topics.TASK_STARTED, run, "late") == []


async def test_a_running_attempt_the_scheduler_cancelled_is_aborted_alone(
    settings, running_worker, task_events, publish, kit: Any
) -> None:
    run = kit.new_run()
    reason = "the run timed out after 2000 ms"
    async with running_worker(settings) as worker:
        await publish(
            [
                kit.scheduled(run, "long", "sleep", {"duration": "60s"}),
                kit.scheduled(run, "cleanup", "sleep", {"duration": "1s"}),
            ]
        )
        await kit.eventually(lambda: task_events.of(topics.TASK_STARTED, run, "long"))
        await kit.eventually(lambda: worker.cancellations.assignment())
        await publish([kit.settled_cancelled(run, "long", 1, reason)])
        aborted = await task_events.wait_outcome(run, "long", timeout_s=20)
        cleanup = await task_events.wait_outcome(run, "cleanup", timeout_s=20)
        await publish([kit.scheduled(run, "long", "sleep", {"duration": "60s"})])
        copy = await kit.eventually(
            lambda: task_events.of(topics.TASK_FAILED, run, "long")[1:], timeout_s=20
        )
        running = _running_sleeps()
    assert (aborted.error.type, aborted.error.message) == ("TaskCancelled", reason)
    assert cleanup.DESCRIPTOR.name == "TaskCompleted"
    assert copy[0].error.type == "TaskCancelled"
    assert len(task_events.of(topics.TASK_STARTED, run, "long")) == 1
    assert running == 0


def _running_sleeps() -> float:
    for line in generate_latest().decode().splitlines():
        if line.startswith('interlock_worker_tasks_running{type="sleep",queue="default"}'):
            return float(line.split()[-1])
    return 0.0


async def test_workers_joining_and_leaving_mid_load_lose_no_task(
    settings, running_worker, task_events, publish, kit: Any
) -> None:
    runs = [kit.new_run() for _ in range(24)]
    events = [
        kit.scheduled(runs[n % len(runs)], f"t{n}", "sleep", {"duration_ms": 10})
        for n in range(300)
    ]

    def completed() -> int:
        return sum(1 for e in task_events.events if e.type == topics.TASK_COMPLETED)

    await publish(events)
    async with running_worker(settings, max_in_flight=8) as first:
        await kit.eventually(lambda: completed() >= 30)
        async with running_worker(settings, max_in_flight=8) as second:
            await kit.eventually(lambda: completed() >= 120)
            await first.drain()
            for event in events:
                await task_events.wait_outcome(event.run_id, event.payload.task_id, timeout_s=60)
    outcomes = [task_events.outcome(e.run_id, e.payload.task_id) for e in events]
    assert all(o.DESCRIPTOR.name == "TaskCompleted" for o in outcomes)
    assert {o.worker_id for o in outcomes} == {first.worker_id, second.worker_id}


def runs_on_distinct_partitions(kit: Any, partitions: int) -> tuple[str, str]:
    """Two run ids whose records land on different partitions (the default partitioner)."""
    chooser = DefaultPartitioner()
    every = list(range(partitions))
    first = kit.new_run()
    first_partition = chooser(first.encode(), every, every)
    while True:
        second = kit.new_run()
        if chooser(second.encode(), every, every) != first_partition:
            return first, second


async def test_a_backlog_on_one_partition_does_not_starve_another(
    settings, running_worker, task_events, publish, kit: Any
) -> None:
    busy, quiet = runs_on_distinct_partitions(kit, settings.kafka_partitions)
    backlog = [kit.scheduled(busy, f"b{n}", "sleep", {"duration_ms": 30}) for n in range(40)]
    await publish(backlog)
    async with running_worker(settings, max_in_flight=2):
        # The backlog is fetched (and buffered by the client) before the quiet run exists.
        await kit.eventually(lambda: task_events.of(topics.TASK_STARTED, busy))
        await publish([kit.scheduled(quiet, f"q{n}", "noop") for n in range(3)])
        for n in range(3):
            await task_events.wait_outcome(quiet, f"q{n}")
        for event in backlog:
            await task_events.wait_outcome(busy, event.payload.task_id)
    finished = sorted(
        (e.time, e.run_id) for e in task_events.events if e.type == topics.TASK_COMPLETED
    )
    quiet_done_by = max(index for index, (_, run) in enumerate(finished) if run == quiet)
    # Served while the backlog is still running, not after it.
    assert quiet_done_by < 25


class MemoryArtifacts:
    """An artifact store keeping uploads in memory, named by the attempt."""

    uploads: ClassVar[dict[str, bytes]] = {}

    def __init__(self, context: TaskContext) -> None:
        self._prefix = f"{context.tenant}/{context.run_id}/{context.task_id}/{context.attempt}"

    async def upload(
        self, name: str, data: bytes, *, content_type: str = "application/octet-stream"
    ) -> ArtifactRef:
        key = f"{self._prefix}/{name}"
        self.uploads[key] = data
        return ArtifactRef(artifact_id=key, name=name, size_bytes=len(data))


@task("tests.worker.report")
async def report(rows: int) -> dict[str, Any]:
    ref = await current_context().artifacts.upload("report.csv", b"n\n" * rows)
    return {"artifact_id": ref.artifact_id, "size": ref.size_bytes}


async def test_tasks_upload_artifacts_through_the_wired_store_and_are_counted(
    settings, running_worker, task_events, publish, kit: Any
) -> None:
    run = kit.new_run()
    async with running_worker(settings, artifacts=MemoryArtifacts):
        await publish(
            [
                kit.scheduled(
                    run, "r", "python", {"function": "tests.worker.report", "args": {"rows": 3}}
                )
            ]
        )
        done = await task_events.wait_outcome(run, "r")
    output = json.loads(done.output_json)
    assert output == {"artifact_id": f"tenant-a/{run}/r/1/report.csv", "size": 6}
    assert MemoryArtifacts.uploads[output["artifact_id"]] == b"n\nn\nn\n"
    metrics = generate_latest().decode()
    assert 'interlock_worker_tasks_total{outcome="completed",type="python"}' in metrics


async def test_a_task_aborted_before_its_first_step_is_reported_and_frees_its_slot(
    settings, running_worker, task_events, publish, kit: Any
) -> None:
    run, next_run = kit.new_run(), kit.new_run()
    async with running_worker(settings, max_in_flight=1) as worker:
        # The race, made certain: a cancellation handled after the attempt started but
        # before its task took a first step (the handler does not wait).
        worker._dispatcher.start(Attempt(event=kit.scheduled(run, "t", "noop"), offsets=[]))
        await worker._cancellations.on_cancelled([kit.cancelled(run)])
        aborted = await task_events.wait_outcome(run, "t")
        await publish([kit.scheduled(next_run, "t", "noop")])
        after = await task_events.wait_outcome(next_run, "t")
    assert (aborted.error.type, aborted.error.retryable) == ("TaskCancelled", False)
    assert after.DESCRIPTOR.name == "TaskCompleted"


@task("tests.worker.huge")
def huge_output() -> dict[str, str]:
    # What an http task fetching 1 MiB of binary returned: ~6 MiB once JSON-escaped.
    return {"body": "\x01" * 1_048_576}


@task("tests.worker.nul")
def nul_output() -> dict[str, str]:
    return {"text": "a\x00b\ud800c"}


@task("tests.worker.nul_failure")
def nul_failure() -> None:
    raise RuntimeError("bad byte \x00 and \udc80 here")


async def test_outputs_and_errors_are_bounded_and_storable(
    settings, running_worker, task_events, publish, kit: Any
) -> None:
    run = kit.new_run()
    async with running_worker(settings):
        await publish(
            [
                kit.scheduled(run, name, "python", {"function": f"tests.worker.{name}"})
                for name in ("huge", "nul", "nul_failure")
            ]
        )
        huge = await task_events.wait_outcome(run, "huge")
        nul = await task_events.wait_outcome(run, "nul")
        nul_failure = await task_events.wait_outcome(run, "nul_failure")
    assert (huge.error.type, huge.error.retryable) == ("OutputTooLarge", False)
    assert "262144" in huge.error.message
    assert json.loads(nul.output_json) == {"text": "a\ufffdb\ufffdc"}
    assert nul_failure.error.message == "bad byte \ufffd and \ufffd here"
    assert "\x00" not in nul_failure.error.traceback_excerpt


async def test_a_copy_of_a_finished_attempt_is_answered_with_its_outcome_not_run_again(
    settings, running_worker, task_events, publish, kit: Any
) -> None:
    run = kit.new_run()
    async with running_worker(settings):
        await publish([kit.scheduled(run, "a", "sleep", {"duration": "100ms"})])
        first = await task_events.wait_outcome(run, "a")
        # The scheduler re-sends the attempt (it thought it lost): same run, task, attempt.
        await publish([kit.scheduled(run, "a", "sleep", {"duration": "100ms"})])
        await kit.eventually(
            lambda: len(task_events.of(topics.TASK_COMPLETED, run, "a")) == 2, timeout_s=30
        )
    completions = task_events.of(topics.TASK_COMPLETED, run, "a")
    assert completions == [first, first]  # the same outcome again
    # Ran once: only the first copy reported a start.
    assert len(task_events.of(topics.TASK_STARTED, run, "a")) == 1
