"""How an exception raised by a task becomes the error a ``task.failed`` reports."""

from __future__ import annotations

import traceback
from dataclasses import dataclass

from interlock.common.strict_json import storable
from interlock.worker.errors import TaskFailure

__all__ = ["Failure", "classify"]

_MESSAGE_CHARS = 2000
_TRACEBACK_CHARS = 4000
_TRACEBACK_LINES = 30


@dataclass(frozen=True, slots=True)
class Failure:
    """An attempt's error, as ``TaskError`` carries it.

    Attributes:
        type: The error's class, e.g. ``"TimeoutError"``.
        message: What went wrong, at most 2000 characters.
        retryable: Whether another attempt may succeed.
        traceback_excerpt: The last lines of the traceback, at most 4000 characters.
    """

    type: str
    message: str
    retryable: bool
    traceback_excerpt: str


def classify(error: BaseException) -> Failure:
    """Describe ``error`` as a task failure.

    A :class:`~interlock.worker.errors.TaskFailure` says itself whether it is
    retryable (bad params never are); a :class:`TimeoutError` is reported as
    ``TaskTimeout``; any other exception is retryable and named after its class.

    Args:
        error: What the executor raised.

    Returns:
        The failure to report.
    """
    if isinstance(error, TaskFailure):
        type_, retryable, message = error.type, error.retryable, error.message
    elif isinstance(error, TimeoutError):
        type_, retryable = "TaskTimeout", True
        message = str(error) or "the task did not finish within its timeout"
    else:
        type_, retryable, message = type(error).__name__, True, str(error)
    # Storable: PostgreSQL refuses NUL, protobuf refuses lone surrogates; a message
    # holding either stopped every consumer of its partition.
    return Failure(
        type=storable(_clip(type_, _MESSAGE_CHARS)),
        message=storable(_clip(message or type_, _MESSAGE_CHARS)),
        retryable=retryable,
        traceback_excerpt=storable(_excerpt(error)),
    )


def _excerpt(error: BaseException) -> str:
    if error.__traceback__ is None:
        return ""
    lines = "".join(traceback.format_exception(error)).splitlines()[-_TRACEBACK_LINES:]
    text = "\n".join(lines)
    return text[-_TRACEBACK_CHARS:]


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
