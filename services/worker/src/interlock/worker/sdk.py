"""What user code imports to run as Interlock tasks.

Example::

    from interlock.worker.sdk import InvalidParams, current_context, task

    @task("reports.build")
    async def build(month: str) -> dict[str, int]:
        ctx = current_context()
        ctx.logger.info("building %s (key %s)", month, ctx.idempotency_key)
        ctx.heartbeat({"stage": "query"})
        ...
        return {"rows": 1200}

A workflow then runs it as a ``python`` task with params
``{"function": "reports.build", "args": {"month": "2026-10"}}``; the worker imports
the module at start-up (setting ``python_task_modules``). Synchronous functions run in
a thread pool; async ones on the worker's event loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from interlock.worker.context import (
    ArtifactRef,
    ArtifactStore,
    ArtifactStoreFactory,
    ArtifactsUnavailable,
    TaskContext,
    TaskLogger,
    current_context,
)
from interlock.worker.errors import InvalidParams, TaskFailure
from interlock.worker.registry import TASKS

__all__ = [
    "ArtifactRef",
    "ArtifactStore",
    "ArtifactStoreFactory",
    "ArtifactsUnavailable",
    "InvalidParams",
    "TaskContext",
    "TaskFailure",
    "TaskLogger",
    "current_context",
    "task",
]

F = TypeVar("F", bound=Callable[..., Any])


def task(name: str) -> Callable[[F], F]:
    """Register the decorated function as the ``python`` task ``name``.

    The function receives the task's ``args`` as keyword arguments and returns a
    JSON-serialisable output; :func:`current_context` gives it the attempt. Raise
    :class:`TaskFailure` (``retryable=False`` when retrying cannot help) or
    :class:`InvalidParams` to fail with a chosen classification.

    Args:
        name: The name workflows call it by, e.g. ``"reports.build"``.

    Returns:
        A decorator returning the function unchanged.

    Raises:
        ValueError: When another function already has the name.
    """

    def register(function: F) -> F:
        TASKS.register(name, function)
        return function

    return register
