"""Interlock workflow definitions of every workload (JSON bodies for POST /api/v1/workflows)."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

FANOUT_WIDTH = 10
"""Parallel tasks in the middle of the fan-out workflow (1 → 10 → 1)."""
SEQUENTIAL_TASKS = 3
"""Tasks of the sequential workflow."""
FANOUT_TASKS = FANOUT_WIDTH + 2
"""Tasks of the fan-out workflow."""


def sequential(name: str) -> dict[str, Any]:
    """Three no-op tasks, each depending on the one before."""
    ids = [f"step{index}" for index in range(1, SEQUENTIAL_TASKS + 1)]
    tasks: list[dict[str, Any]] = [{"id": ids[0], "type": "noop"}]
    tasks += [
        {"id": task, "type": "noop", "depends_on": [before]} for before, task in pairwise(ids)
    ]
    return {"name": name, "description": "make bench (a): 3 sequential no-ops", "tasks": tasks}


def fanout(name: str, width: int = FANOUT_WIDTH) -> dict[str, Any]:
    """One no-op, then ``width`` no-ops depending on it, then one depending on them all."""
    middle = [f"branch{index}" for index in range(width)]
    tasks: list[dict[str, Any]] = [{"id": "first", "type": "noop"}]
    tasks += [{"id": task, "type": "noop", "depends_on": ["first"]} for task in middle]
    tasks.append({"id": "last", "type": "noop", "depends_on": middle})
    return {"name": name, "description": f"make bench (b): fan-out 1 → {width} → 1", "tasks": tasks}


DELAY_TASK = "wait"
"""Id of the timer workflow's delay task."""


def delay(name: str, delay_s: float) -> dict[str, Any]:
    """One delay task waiting ``delay_s`` seconds (a durable timer in the scheduler)."""
    duration = f"{round(delay_s * 1000)}ms"
    return {
        "name": name,
        "description": f"make bench (c): wait {duration}",
        "tasks": [{"id": DELAY_TASK, "type": "delay", "params": {"duration": duration}}],
    }


def single_noop(name: str) -> dict[str, Any]:
    """One no-op task (run starts, and the steady part of the failure mix)."""
    return {
        "name": name,
        "description": "make bench: one no-op",
        "tasks": [{"id": "only", "type": "noop"}],
    }


FLAKY_TASK = "flaky"
"""Id of the flaky workflow's task."""


def flaky(name: str, *, failure_rate: float, max_attempts: int) -> dict[str, Any]:
    """One ``flaky`` task that fails each attempt with ``failure_rate``.

    It is tried ``max_attempts`` times with a short back-off, then dead-lettered.
    """
    return {
        "name": name,
        "description": f"make bench (d): flaky task, failure rate {failure_rate}",
        "tasks": [
            {
                "id": FLAKY_TASK,
                "type": "flaky",
                "params": {"failure_rate": failure_rate},
                "retry": {
                    "max_attempts": max_attempts,
                    "initial_interval": "100ms",
                    "backoff": 2.0,
                    "max_interval": "1s",
                },
            }
        ],
    }


BACKLOG_STEPS = 2
"""Tasks of the backlog workflow (each a sleep)."""


def sleeps(name: str, *, seconds: float, steps: int = BACKLOG_STEPS) -> dict[str, Any]:
    """``steps`` sleeps of ``seconds`` one after the other, no timeout set (a user's run)."""
    duration = f"{round(seconds * 1000)}ms"
    ids = [f"sleep{index}" for index in range(1, steps + 1)]
    tasks: list[dict[str, Any]] = [
        {"id": ids[0], "type": "sleep", "params": {"duration": duration}}
    ]
    tasks += [
        {"id": task, "type": "sleep", "params": {"duration": duration}, "depends_on": [before]}
        for before, task in pairwise(ids)
    ]
    return {
        "name": name,
        "description": f"make bench (g): backlog of {steps} x sleep {duration}",
        "tasks": tasks,
    }
