"""``python -m bench``: measure Interlock, then Temporal, and always write a report.

Whatever fails on one side is recorded in the JSON (``{"error": ...}``) and the
other side still runs; the exit code is non-zero only when no system was measured.
"""

from __future__ import annotations

import asyncio
import functools
import os
import platform
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from rich.console import Console

from bench import stats
from bench.config import BenchConfig
from bench.logs import measure_logs
from bench.metadata import measure_metadata
from bench.notifications import measure_notifications
from bench.progress import ProgressBoard
from bench.report import plot_throughput, render_table, write_json
from bench.tracing import measure_tracing

AUTH_BENCHMARK = Path(__file__).with_name("auth.py")
"""The gateway authorization benchmark (issue 3), run after ours when it exists."""
ARTIFACT_BENCHMARK = Path(__file__).with_name("artifacts.py")
"""The artifact transfer benchmark (issue 16), run when ``BENCH_SYSTEMS`` names ``artifacts``."""


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def _git_commit() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
            cwd=Path(__file__).resolve().parents[1],
        )
    except OSError:
        return None
    return result.stdout.strip() or None


async def _guarded(
    name: str, measure: Callable[[], Awaitable[dict[str, Any]]], board: ProgressBoard
) -> dict[str, Any]:
    try:
        return await measure()
    except Exception as error:
        board.note(f"{name}: failed: {type(error).__name__}: {error}")
        return {"error": f"{type(error).__name__}: {error}"}


def _run_auth_benchmark(config: BenchConfig, console: Console) -> dict[str, Any] | None:
    """Run bench/auth.py (its own stack, its own report), sized like ours."""
    if not AUTH_BENCHMARK.exists():
        return None
    console.rule("bench/auth.py (gateway authorization benchmark)")
    seconds = max(2.0, 10.0 * min(config.scale, 1.0))
    requests = max(200, round(2000 * min(config.scale, 1.0)))
    try:
        completed = subprocess.run(
            [
                sys.executable,
                str(AUTH_BENCHMARK),
                "--seconds",
                f"{seconds:g}",
                "--latency-requests",
                str(requests),
            ],
            check=False,
            timeout=900,
            cwd=AUTH_BENCHMARK.parents[1],
        )
    except subprocess.TimeoutExpired:
        return {"exit_code": None, "error": "timed out after 900 s"}
    return {"exit_code": completed.returncode}


def _run_artifact_benchmark(config: BenchConfig, console: Console) -> dict[str, Any]:
    """Run bench/artifacts.py (its own stack, its own report), sized by the scale."""
    console.rule("bench/artifacts.py (artifact transfers: gateway against S3)")
    size_mb = max(10, round(100 * min(config.scale, 1.0)))
    command = [sys.executable, str(ARTIFACT_BENCHMARK), "--size-mb", str(size_mb)]
    try:
        completed = subprocess.run(
            [*command, "--large-mb", str(config.artifact_large_mb)],
            check=False,
            timeout=1800,
            cwd=ARTIFACT_BENCHMARK.parents[1],
        )
    except subprocess.TimeoutExpired:
        return {"exit_code": None, "error": "timed out after 1800 s"}
    return {"exit_code": completed.returncode}


async def run(config: BenchConfig, console: Console) -> dict[str, Any]:
    """Measure the configured systems; return the report (timelines under ``timelines``).

    ``temporal`` holds one entry per Temporal setup measured (``{setup: figures}``); the
    ratios divide Interlock's figure by the best setup's, named in ``ratio_basis``.
    """
    from bench.interlock_side import measure_interlock
    from bench.temporal_side import SETUPS, measure_temporal

    result: dict[str, Any] = {
        "meta": {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine(),
            "commit": _git_commit(),
            "config": {k: v for k, v in asdict(config).items() if k != "results_dir"},
            "latency": "start to finish as each system's server recorded it",
            "load_average_1m_before": round(os.getloadavg()[0], 2),
        },
        "interlock": {"error": "not measured (BENCH_SYSTEMS)"},
        "temporal": {},
    }
    began = time.monotonic()
    with ProgressBoard(console) as board:
        if "interlock" in config.systems:
            result["interlock"] = await _guarded(
                "interlock", lambda: measure_interlock(config, board), board
            )
        if "temporal" in config.systems:
            for name in config.temporal_setups:
                measure = functools.partial(measure_temporal, config, board, SETUPS[name])
                result["temporal"][name] = await _guarded(f"temporal/{name}", measure, board)
        for name, measure_service in SERVICE_BENCHMARKS.items():
            if name in config.systems:
                service_measure = functools.partial(measure_service, config, board)
                result[name] = await _guarded(name, service_measure, board)
    result["meta"]["duration_s"] = round(time.monotonic() - began, 1)
    # Others' work on a shared machine skews every figure: say how busy it was.
    result["meta"]["load_average_1m_after"] = round(os.getloadavg()[0], 2)
    result["ratio"], result["ratio_basis"] = {}, {}
    for workload, key in RATIOS:
        best = _best_setup(result["temporal"], workload, key)
        theirs = _figure(result["temporal"].get(best, {}), workload, key) if best else None
        result["ratio"][workload] = _round(
            stats.ratio(_figure(result["interlock"], workload, key), theirs)
        )
        result["ratio_basis"][workload] = best
    return result


SERVICE_BENCHMARKS: dict[str, Callable[[BenchConfig, ProgressBoard], Awaitable[dict[str, Any]]]] = {
    "metadata": measure_metadata,
    "logs": measure_logs,
    "notifications": measure_notifications,
    "tracing": measure_tracing,
}
"""The services' own benchmarks that run in this process, each on a stack of its own."""
RATIOS = (("sequential", "tasks_per_s"), ("fanout", "tasks_per_s"), ("starts", "starts_per_s"))
"""The rate each headline ratio compares, per workload."""


def _best_setup(setups: dict[str, Any], workload: str, key: str) -> str | None:
    """The Temporal setup with the highest ``key`` on ``workload``: the fair anchor."""
    measured = {
        name: value
        for name, figures in setups.items()
        if (value := _figure(figures, workload, key)) is not None
    }
    return max(measured, key=lambda name: measured[name]) if measured else None


def _figure(side: dict[str, Any], workload: str, key: str) -> float | None:
    figures = side.get(workload)
    value = figures.get(key) if isinstance(figures, dict) else None
    return value if isinstance(value, int | float) else None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def main() -> int:
    """Run the benchmark; write ``latest.json`` and ``throughput.png``; print the table."""
    console = Console()
    config = BenchConfig.from_env()
    console.print(
        f"make bench: BENCH_SCALE={config.scale:g}, systems {', '.join(config.systems)}; "
        f"{config.window} runs in flight for {config.throughput_s:g} s per throughput workload, "
        f"{config.timer_runs} timer runs, {config.start_runs} starts, "
        f"{config.failure_runs} failure-mix runs"
    )
    unknown = [name for name in config.temporal_setups if name not in _setup_names()]
    if unknown:
        console.print(f"BENCH_TEMPORAL_SETUPS names unknown setups: {', '.join(unknown)}")
        return 2
    result = asyncio.run(run(config, console))
    timelines = {"interlock": result["interlock"].pop("timelines", {})}
    for name, figures in result["temporal"].items():
        timelines[f"temporal/{name}"] = figures.pop("timelines", {})
    auth = _run_auth_benchmark(config, console) if "interlock" in config.systems else None
    if auth is not None:
        result["auth"] = auth
    if "artifacts" in config.systems:
        result["artifacts"] = _run_artifact_benchmark(config, console)
    json_path = config.results_dir / "latest.json"
    plot_path = config.results_dir / "throughput.png"
    write_json(result, json_path)
    plot_throughput(timelines, plot_path)
    render_table(result, console)
    console.print(f"wrote {json_path} and {plot_path}")
    extra = [result.get(name, {}) for name in (*SERVICE_BENCHMARKS, "artifacts")]
    sides = [result["interlock"], *extra, *result["temporal"].values()]
    return 0 if any(side and "error" not in side for side in sides) else 1


def _setup_names() -> set[str]:
    from bench.temporal_side import SETUPS

    return set(SETUPS)
