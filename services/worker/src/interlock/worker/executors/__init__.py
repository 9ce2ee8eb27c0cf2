"""Executors: what runs a task of a given type, discovered through entry points.

An executor is any object with an async ``execute(params, context)`` method. The
worker finds executors through the ``interlock.executors`` entry point group: each
entry's name is the task type, and its value is a callable that receives the
worker's settings and returns the executor (a class with such an ``__init__`` does).
The worker's own executors are registered the same way in its ``pyproject.toml``;
``services/worker/README.md`` shows how a user's package adds a type.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ValidationError

from interlock.worker.context import TaskContext
from interlock.worker.errors import InvalidParams
from interlock.worker.settings import WorkerSettings

__all__ = [
    "ENTRY_POINT_GROUP",
    "Executor",
    "ExecutorFactory",
    "load_executors",
    "parse_params",
]

ENTRY_POINT_GROUP = "interlock.executors"
"""The entry point group executors are registered under."""

_log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)


@runtime_checkable
class Executor(Protocol):
    """Runs tasks of one type."""

    async def execute(self, params: Any, context: TaskContext) -> Any:
        """Run one attempt.

        Args:
            params: The task's params, a decoded JSON value (usually an object) with
                every template already resolved.
            context: The attempt: ids, idempotency key, heartbeat, logger, artifacts.

        Returns:
            The output, any JSON-serialisable value; it becomes ``output_json``.

        Raises:
            interlock.worker.errors.InvalidParams: The params are unusable (never
                retried).
            interlock.worker.errors.TaskFailure: The attempt failed; its
                ``retryable`` says whether to retry.
            Exception: Anything else is a retryable failure named after its class.
        """
        ...


ExecutorFactory = Callable[[WorkerSettings], Executor]
"""What an ``interlock.executors`` entry point names: settings in, executor out."""


def load_executors(settings: WorkerSettings) -> dict[str, Executor]:
    """Create every executor registered under :data:`ENTRY_POINT_GROUP`.

    Args:
        settings: Passed to each factory.

    Returns:
        Executors by task type.

    Raises:
        RuntimeError: When two installed packages register the same task type.
        Exception: Whatever a factory raises: a broken plugin stops the worker at
            start-up rather than failing its tasks later.
    """
    executors: dict[str, Executor] = {}
    origins: dict[str, str] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name in executors:
            raise RuntimeError(
                f"task type {entry.name!r} is registered twice: {origins[entry.name]} "
                f"and {entry.value}"
            )
        factory: ExecutorFactory = entry.load()
        executors[entry.name] = factory(settings)
        origins[entry.name] = entry.value
    _log.info("executors loaded", extra={"task_types": sorted(executors)})
    return executors


def parse_params(model: type[M], params: Any) -> M:
    """Validate ``params`` against a pydantic model.

    Args:
        model: The params' model.
        params: The decoded params.

    Returns:
        The validated params.

    Raises:
        InvalidParams: When they do not fit the model.
    """
    try:
        return model.model_validate(params if params is not None else {})
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in e['loc']) or 'params'}: {e['msg']}"
            for e in error.errors()
        )
        raise InvalidParams(f"invalid params: {problems}") from None
