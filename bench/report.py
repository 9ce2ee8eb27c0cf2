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

SYSTEMS = ("interlock", "temporal")


def write_json(result: Mapping[str, Any], path: Path) -> None:
    """Write ``result`` as indented JSON (parent folders created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")


def plot_throughput(
    timelines: Mapping[str, Mapping[str, list[tuple[float, float]]]], path: Path
) -> None:
    """Tasks/s over time of both systems, one panel per throughput workload.

    Args:
        timelines: ``{system: {workload: [(seconds, tasks/s), ...]}}``.
        path: The PNG to write.
    """
    workloads = ("sequential", "fanout")
    titles = {"sequential": "(a) sequential 3 no-ops", "fanout": "(b) fan-out 1 → 10 → 1"}
    figure, axes = plt.subplots(1, len(workloads), figsize=(12, 4.5), constrained_layout=True)
    for axis, workload in zip(axes, workloads, strict=True):
        for system in SYSTEMS:
            points = timelines.get(system, {}).get(workload) or []
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


def _value(result: Mapping[str, Any], system: str, *keys: str) -> Any:
    node: Any = result.get(system)
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


def _status(result: Mapping[str, Any], system: str) -> str:
    error = _value(result, system, "error")
    return f"[red]not run: {error}[/red]" if error else "[green]measured[/green]"


def render_table(result: Mapping[str, Any], console: Console) -> None:
    """Print the figures of both systems side by side, with Interlock / Temporal."""
    table = Table(title="make bench — Interlock vs Temporal (same machine, same run)")
    table.add_column("workload")
    table.add_column("figure")
    table.add_column("Interlock", justify="right")
    table.add_column("Temporal", justify="right")
    table.add_column("Interlock / Temporal", justify="right")
    throughput_rows = (
        ("runs_per_s", "runs/s"),
        ("tasks_per_s", "tasks/s"),
        ("p50_ms", "latency p50 ms"),
        ("p95_ms", "latency p95 ms"),
        ("p99_ms", "latency p99 ms"),
        ("cpu_s_per_1000_tasks", "CPU s / 1,000 tasks"),
        ("runs", "runs completed"),
    )
    for workload, title in (("sequential", "(a) sequential"), ("fanout", "(b) fan-out")):
        for key, label in throughput_rows:
            ours, theirs = (_value(result, s, workload, key) for s in SYSTEMS)
            ratio = _value(result, "ratio", workload) if key == "tasks_per_s" else None
            table.add_row(title, label, _fmt(ours), _fmt(theirs), _fmt(ratio))
        for system in SYSTEMS:
            error = _value(result, system, workload, "error")
            if error:
                table.add_row(title, f"{system} error", str(error)[:60], "", "")
        table.add_section()
    for key in ("lateness_p50_ms", "lateness_p95_ms", "lateness_p99_ms", "fired"):
        label = key.replace("lateness_", "lateness ").replace("_ms", " ms")
        table.add_row(
            "(c) 5 s timers", label, *(_fmt(_value(result, s, "timers", key)) for s in SYSTEMS), ""
        )
    table.add_section()
    mix = ("runs", "flaky_runs", "succeeded", "dead_lettered", "expected_dead_lettered", "lost")
    for key in (*mix, "matches_expectation"):
        value = _value(result, "interlock", "failure_mix", key)
        table.add_row("(d) failure mix", key.replace("_", " "), _fmt(value), "n/a", "")
    table.add_section()
    interlock_only: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...] = (
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
    interlock_only += (
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
    for title, workload, rows in interlock_only:
        for key, label in rows:
            value = _value(result, "interlock", workload, key)
            table.add_row(title, label, _fmt(value), "n/a", "")
        table.add_section()
    table.add_row("", "status", _status(result, "interlock"), _status(result, "temporal"), "")
    console.print(table)
