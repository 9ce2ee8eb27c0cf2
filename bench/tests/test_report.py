"""The report compares Interlock with the best Temporal setup measured, and shows them all."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from bench.report import render_table
from bench.runner import _best_setup


def _side(sequential: float, starts: float) -> dict[str, Any]:
    return {
        "sequential": {"tasks_per_s": sequential},
        "starts": {"starts_per_s": starts},
    }


def test_the_best_setup_is_chosen_per_workload() -> None:
    setups = {"tuned": _side(127.0, 300.0), "default": _side(52.0, 310.0)}

    assert _best_setup(setups, "sequential", "tasks_per_s") == "tuned"
    assert _best_setup(setups, "starts", "starts_per_s") == "default"
    assert _best_setup({"tuned": {"error": "down"}}, "sequential", "tasks_per_s") is None


def test_the_table_has_a_column_per_setup_and_names_the_ratio_basis() -> None:
    result = {
        "interlock": _side(800.0, 530.0),
        "temporal": {"tuned": _side(127.0, 300.0), "default": {"error": "did not start"}},
        "ratio": {"sequential": 6.3, "fanout": None, "starts": 1.77},
        "ratio_basis": {"sequential": "tuned", "fanout": None, "starts": "tuned"},
    }
    console = Console(record=True, width=200)

    render_table(result, console)

    text = console.export_text()
    assert "Temporal tuned" in text
    assert "Temporal default" in text
    assert "6.3 (vs tuned)" in text
    assert "not run: did not start" in text


def test_the_table_splits_interlock_cpu_per_task_by_program() -> None:
    interlock = _side(800.0, 530.0)
    interlock["fanout"] = {
        "cpu_s_per_1000_tasks": 1.2,
        "cpu_s_per_1000_tasks_by_program": {"scheduler": 0.41, "tansu": 0.22},
    }
    console = Console(record=True, width=200)

    render_table({"interlock": interlock, "temporal": {}}, console)

    lines = console.export_text().splitlines()
    scheduler = next(line for line in lines if "CPU s / 1,000 tasks: scheduler" in line)
    assert "(b) fan-out" in scheduler
    assert "0.41" in scheduler
    assert any("CPU s / 1,000 tasks: tansu" in line and "0.22" in line for line in lines)
