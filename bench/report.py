"""The benchmark's outputs: the terminal table, ``latest.json`` and the throughput plot."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server

import matplotlib.pyplot as plt
from rich.console import Console
from rich.table import Table


def write_json(result: Mapping[str, Any], path: Path) -> None:
    """Write ``result`` as indented JSON (parent folders created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")


def plot_throughput(
    timelines: Mapping[str, Mapping[str, list[tuple[float, float]]]], path: Path
) -> None:
    """Tasks/s over time of both systems, one panel per throughput workload.

    Args:
        timelines: ``{system: {workload: [(seconds, tasks/s), ...]}}``; a system is
            ``interlock`` or ``temporal/<setup>``.
        path: The PNG to write.
    """
    workloads = ("sequential", "fanout")
    titles = {"sequential": "(a) sequential 3 no-ops", "fanout": "(b) fan-out 1 → 10 → 1"}
    figure, axes = plt.subplots(1, len(workloads), figsize=(12, 4.5), constrained_layout=True)
    for axis, workload in zip(axes, workloads, strict=True):
        for system, workloads_of_system in timelines.items():
            points = workloads_of_system.get(workload) or []
            if points:
                xs, ys = zip(*points, strict=True)
                axis.plot(xs, ys, label=system, drawstyle="steps-post")
            else:
                axis.plot([], [], label=f"{system} (not measured)")
        axis.set_title(titles[workload])
        axis.set_xlabel("seconds since the first run started")
        axis.set_ylabel("tasks completed per second")
        axis.set_yscale("symlog", linthresh=10)
        axis.grid(True, alpha=0.3)
        axis.legend()
    figure.suptitle("make bench: throughput over time (server-recorded finish times)")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _value(node: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:,.3g}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _status(side: Any) -> str:
    error = _value(side, "error")
    return f"[red]not run: {error}[/red]" if error else "[green]measured[/green]"


THROUGHPUT_ROWS = (
    ("runs_per_s", "runs/s"),
    ("tasks_per_s", "tasks/s"),
    ("p50_ms", "latency p50 ms"),
    ("p95_ms", "latency p95 ms"),
    ("p99_ms", "latency p99 ms"),
    ("cpu_s_per_1000_tasks", "CPU s / 1,000 tasks"),
    ("runs", "runs completed"),
)
COMPARED: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...] = (
    ("(a) sequential", "sequential", THROUGHPUT_ROWS),
    ("(b) fan-out", "fanout", THROUGHPUT_ROWS),
    (
        "(c) 5 s timers",
        "timers",
        (
            ("lateness_p50_ms", "lateness p50 ms"),
            ("lateness_p95_ms", "lateness p95 ms"),
            ("lateness_p99_ms", "lateness p99 ms"),
            ("fired", "fired"),
        ),
    ),
    (
        "(c2) concurrent timers",
        "concurrent_timers",
        (
            ("lateness_p50_ms", "lateness p50 ms"),
            ("lateness_p95_ms", "lateness p95 ms"),
            ("lateness_p99_ms", "lateness p99 ms"),
            ("fired", "fired"),
            ("delay_s", "delay s"),
            ("set_per_s", "timers set (so due) /s"),
            ("all_set_before_first_fire", "all set before the first fired"),
        ),
    ),
    (
        "(e) run starts",
        "starts",
        (("starts_per_s", "starts/s"), ("p50_ms", "start p50 ms"), ("p99_ms", "start p99 ms")),
    ),
    (
        "(f) lone 3-task run",
        "lone_run",
        (
            ("p50_ms", "run p50 ms"),
            ("p99_ms", "run p99 ms"),
            ("client_p50_ms", "seen by client p50 ms"),
        ),
    ),
)
"""Workloads measured on both systems: (title, key, rows)."""
INTERLOCK_ONLY: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...] = (
    (
        "(e2) batch starts",
        "batch_starts",
        (
            ("runs_per_s", "runs accepted/s"),
            ("batch_p50_ms", "batch of 1,000 p50 ms"),
            ("batch_p99_ms", "batch of 1,000 p99 ms"),
        ),
    ),
    (
        "(d) failure mix",
        "failure_mix",
        tuple(
            (key, key.replace("_", " "))
            for key in (
                "runs",
                "flaky_runs",
                "succeeded",
                "dead_lettered",
                "expected_dead_lettered",
                "lost",
                "matches_expectation",
            )
        ),
    ),
    (
        "(g) backlog 2 x sleep 3s",
        "backlog",
        (
            ("runs", "runs started at once"),
            ("succeeded", "runs succeeded"),
            ("ideal_drain_s", "ideal drain s"),
            ("drain_s", "drain s"),
            ("drain_vs_ideal", "drain / ideal"),
            ("executions", "sleeps executed"),
            ("duplicates", "duplicate executions"),
        ),
    ),
)
"""Workloads with no Temporal counterpart."""
RATIO_KEYS = {"sequential": "tasks_per_s", "fanout": "tasks_per_s", "starts": "starts_per_s"}
"""The row of each workload that carries the headline ratio."""


def render_table(result: Mapping[str, Any], console: Console) -> None:
    """Print Interlock beside every Temporal setup measured, with Interlock / best Temporal."""
    setups: Mapping[str, Any] = result.get("temporal") or {}
    table = Table(title="make bench — Interlock vs Temporal (same machine, same run)")
    table.add_column("workload")
    table.add_column("figure")
    table.add_column("Interlock", justify="right")
    for name in setups:
        table.add_column(f"Temporal {name}", justify="right")
    table.add_column("Interlock / best Temporal", justify="right")
    sides = [result.get("interlock"), *setups.values()]
    for title, workload, rows in COMPARED:
        for key, label in rows:
            ratio = None
            if RATIO_KEYS.get(workload) == key:
                basis = _value(result, "ratio_basis", workload)
                ratio = f"{_fmt(_value(result, 'ratio', workload))} (vs {basis or '—'})"
            values = [_fmt(_value(side, workload, key)) for side in sides]
            table.add_row(title, label, *values, ratio or "")
        by_program = _value(result, "interlock", workload, "cpu_s_per_1000_tasks_by_program")
        for program, seconds in (by_program or {}).items():
            table.add_row(title, f"  CPU s / 1,000 tasks: {program}", _fmt(seconds))
        for side in sides:
            error = _value(side, workload, "error")
            if error:
                table.add_row(title, "error", str(error)[:60], *([""] * len(setups)), "")
        table.add_section()
    for title, workload, rows in INTERLOCK_ONLY:
        for key, label in rows:
            value = _fmt(_value(result, "interlock", workload, key))
            table.add_row(title, label, value, *(["n/a"] * len(setups)), "")
        table.add_section()
    table.add_row("", "status", *(_status(side) for side in sides), "")
    console.print(table)
