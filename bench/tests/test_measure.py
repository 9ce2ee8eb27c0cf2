"""Summaries of workloads and the shapes driven, on hand-made records (no servers)."""

from datetime import UTC, datetime, timedelta

import pytest

from bench import workloads
from bench.config import BenchConfig
from bench.interlock_side import delay_lateness_s
from bench.measure import RunRecord, summarize_throughput, summarize_timers

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def _run(start_s: float, end_s: float | None, status: str = "succeeded") -> RunRecord:
    return RunRecord(
        run_id=f"r{start_s}",
        started_at=T0 + timedelta(seconds=start_s),
        finished_at=None if end_s is None else T0 + timedelta(seconds=end_s),
        status=status,
    )


def test_throughput_counts_succeeded_runs_from_first_start_to_last_finish() -> None:
    records = [_run(0, 0.1), _run(0, 0.3), _run(1.0, 2.0), _run(1.5, None, "lost")]
    summary = summarize_throughput(records, tasks_per_run=3, cpu_s=1.8, window=2)
    figures = summary.figures
    assert figures["runs"] == 3
    assert figures["not_succeeded"] == 1
    assert figures["runs_per_s"] == 1.5  # 3 runs over 2 s
    assert figures["tasks_per_s"] == 4.5
    assert figures["p50_ms"] == 300.0
    assert figures["cpu_s_per_1000_tasks"] == 200.0  # 1.8 s for 9 tasks
    assert summary.timeline == [(0.0, 6.0), (1.0, 0.0), (2.0, 3.0)]


def test_throughput_without_successes_has_no_rates() -> None:
    summary = summarize_throughput([_run(0, None, "lost")], tasks_per_run=3, cpu_s=1.0, window=1)
    assert summary.figures["runs_per_s"] is None
    assert summary.figures["p99_ms"] is None
    assert summary.timeline == []


def test_timer_summary_reports_how_many_fired() -> None:
    figures = summarize_timers([0.01, 0.02], runs=3, delay_s=5.0, cpu_s=None)
    assert figures["runs"] == 3
    assert figures["fired"] == 2
    assert figures["lateness_p50_ms"] == pytest.approx(15.0)


def test_delay_lateness_prefers_the_delay_tasks_own_times() -> None:
    view = {
        "created_at": "2026-01-01T12:00:00.000Z",
        "finished_at": "2026-01-01T12:00:09.000Z",
        "tasks": [
            {
                "id": workloads.DELAY_TASK,
                "scheduled_at": "2026-01-01T12:00:01.000Z",
                "finished_at": "2026-01-01T12:00:06.250Z",
                "output": {"fired_at": "2026-01-01T12:00:06.120000+00:00"},
            }
        ],
    }
    lateness, basis = delay_lateness_s(view, 5.0)
    assert basis == "task"
    assert lateness == pytest.approx(0.12)


def test_delay_lateness_falls_back_to_the_run_times() -> None:
    view = {
        "created_at": "2026-01-01T12:00:00.000Z",
        "finished_at": "2026-01-01T12:00:05.300Z",
        "tasks": [{"id": workloads.DELAY_TASK, "scheduled_at": None, "finished_at": None}],
    }
    lateness, basis = delay_lateness_s(view, 5.0)
    assert basis == "run"
    assert lateness == pytest.approx(0.3)
    assert delay_lateness_s({"tasks": []}, 5.0) == (None, "run")


def test_workflow_shapes() -> None:
    sequential = workloads.sequential("s")["tasks"]
    assert [t.get("depends_on") for t in sequential] == [None, ["step1"], ["step2"]]
    fanout = workloads.fanout("f")["tasks"]
    assert len(fanout) == workloads.FANOUT_TASKS == 12
    assert fanout[-1]["depends_on"] == [f"branch{i}" for i in range(10)]
    assert workloads.delay("d", 5.0)["tasks"][0]["params"] == {"duration": "5000ms"}
    flaky = workloads.flaky("x", failure_rate=0.5, max_attempts=3)["tasks"][0]
    assert flaky["params"] == {"failure_rate": 0.5}
    assert flaky["retry"]["max_attempts"] == 3


def test_config_scales_sizes_and_refuses_nonsense() -> None:
    small = BenchConfig.from_env({"BENCH_SCALE": "0.1"})
    assert small.timer_runs == 100
    assert small.throughput_s == 3.0
    assert BenchConfig.from_env({}).timer_runs == 1000
    assert BenchConfig.from_env({"BENCH_SYSTEMS": "temporal"}).systems == ("temporal",)
    with pytest.raises(ValueError, match="BENCH_SCALE"):
        BenchConfig.from_env({"BENCH_SCALE": "0"})
    with pytest.raises(ValueError, match="unknown"):
        BenchConfig.from_env({"BENCH_SYSTEMS": "airflow"})


def test_the_artifact_memory_upload_scales_unless_set() -> None:
    assert BenchConfig.from_env({}).artifact_large_mb == 1024
    assert BenchConfig.from_env({"BENCH_SCALE": "0.5"}).artifact_large_mb == 512
    assert BenchConfig.from_env({"BENCH_SCALE": "0.01"}).artifact_large_mb == 64
    chosen = {"BENCH_SCALE": "0.5", "BENCH_ARTIFACT_LARGE_MB": "1024"}
    assert BenchConfig.from_env(chosen).artifact_large_mb == 1024
