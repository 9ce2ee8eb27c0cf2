"""The functions ``@task`` registered, which the ``python`` executor calls by name."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

__all__ = ["TASKS", "TaskRegistry"]


class TaskRegistry:
    """Functions by task name. Thread-safe."""

    def __init__(self) -> None:
        self._functions: dict[str, Callable[..., Any]] = {}
        self._lock = threading.Lock()

    def register(self, name: str, function: Callable[..., Any]) -> None:
        """Register ``function`` as ``name``.

        Raises:
            ValueError: When the name is empty or another function already has it.
        """
        if not name:
            raise ValueError("a task name must not be empty")
        with self._lock:
            existing = self._functions.get(name)
            if existing is not None and existing is not function:
                raise ValueError(f"task {name!r} is already registered to {existing!r}")
            self._functions[name] = function

    def get(self, name: str) -> Callable[..., Any] | None:
        """Return the function registered as ``name``, or ``None``."""
        return self._functions.get(name)

    def names(self) -> list[str]:
        """Return the registered names, sorted."""
        return sorted(self._functions)


TASKS = TaskRegistry()
"""The process-wide registry ``@task`` writes to."""
