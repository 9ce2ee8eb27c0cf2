"""Errors a task can end with, and whether retrying can help.

Executors and ``@task`` functions raise these to say how an attempt failed; any
other exception counts as a retryable failure named after its class. The worker serves
no API of its own (only readiness), so these end as ``task.failed`` events, never as
problem documents::

    InterlockError               (interlock.common.errors)
    └── TaskFailure              retryable unless told otherwise
        ├── InvalidParams        bad params: never retryable
        ├── ExecutorUnavailable  unknown or disabled task type: never retryable
        └── TaskAborted          the worker stopped the attempt
            ├── TaskCancelled    its run or the task was cancelled: never retryable
            └── WorkerShutdown   the worker shut down first: retryable
"""

from __future__ import annotations

from interlock.common.errors import InterlockError

__all__ = [
    "ExecutorUnavailable",
    "InvalidParams",
    "TaskAborted",
    "TaskCancelled",
    "TaskFailure",
    "WorkerShutdown",
]


class TaskFailure(InterlockError):
    """The attempt failed; the scheduler retries it when ``retryable``.

    Args:
        message: What went wrong, for people.
        retryable: Whether another attempt may succeed. Default: ``True``.
        type_: The error type reported. Default: the exception's class name.
    """

    default_retryable = True

    def __init__(
        self, message: str, *, retryable: bool | None = None, type_: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = self.default_retryable if retryable is None else retryable
        self.type = type_ or type(self).__name__


class InvalidParams(TaskFailure):
    """The task's params are malformed or missing something; retrying cannot help."""

    default_retryable = False


class ExecutorUnavailable(TaskFailure):
    """This worker has no executor for the task's type, or it is disabled."""

    default_retryable = False


class TaskAborted(TaskFailure):
    """The worker stopped the attempt before it finished."""


class TaskCancelled(TaskAborted):
    """The attempt (or its run) was cancelled."""

    default_retryable = False


class WorkerShutdown(TaskAborted):
    """The worker shut down before the attempt finished; another worker may retry it."""
