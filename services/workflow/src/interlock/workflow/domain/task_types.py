"""The task types a definition may use: the one list of them."""

from __future__ import annotations

DELAY = "delay"
"""The task type the scheduler handles itself with a durable timer."""

EXECUTOR_TYPES: tuple[str, ...] = (
    "http",
    "python",
    "shell",
    "noop",
    "sleep",
    "fail",
    "flaky",
    "echo",
)
"""Task types run by workers; compensations must use one of these."""

TASK_TYPES: tuple[str, ...] = (*EXECUTOR_TYPES, DELAY)
"""Every task type a definition may use."""
