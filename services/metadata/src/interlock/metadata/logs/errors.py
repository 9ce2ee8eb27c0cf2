"""Errors of task logs, and their edge mappings.

The tree::

    InterlockError (interlock.common.errors)
     └── LogsError                 base of the logs' errors
          ├── RunNotFoundError     404  no such run in the caller's tenant
          └── InvalidCursorError   400  a cursor this service did not issue
"""

from __future__ import annotations

from interlock.common.errors import InterlockError

__all__ = ["InvalidCursorError", "LogsError", "RunNotFoundError"]


class LogsError(InterlockError):
    """Base of the task logs' errors."""


class RunNotFoundError(LogsError):
    """No such run in the caller's tenant (another tenant's run included)."""

    status = 404
    title = "Run not found"
    problem_type = "not-found"


class InvalidCursorError(LogsError):
    """``after`` or ``Last-Event-ID`` is not a cursor this service issued."""

    status = 400
    title = "Invalid log cursor"
    problem_type = "invalid-cursor"
