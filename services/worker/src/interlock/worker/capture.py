"""A python task's ``print`` and ``logging`` output, sent to its attempt's log.

While :func:`captured_output` is active (the python executor wraps each call in it),
text the task writes to ``sys.stdout`` (``INFO``) or ``sys.stderr`` (``WARNING``) and
records it logs through the standard ``logging`` module go to its
:class:`~interlock.worker.context.TaskLogger` as well. Which task wrote is told by a
context variable, so tasks running at once in threads or coroutines each get their own
lines; output outside a task goes where it always went.
"""

from __future__ import annotations

import contextvars
import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from interlock.worker.context import TaskLogger

__all__ = ["captured_output", "install_capture"]

_WORKER_LOGGERS = "interlock."  # the worker's own records are not the task's output

_target: contextvars.ContextVar[TaskLogger | None] = contextvars.ContextVar(
    "interlock_task_output", default=None
)
_install_lock = threading.Lock()


@contextmanager
def captured_output(logger: TaskLogger) -> Iterator[None]:
    """Send output written in this context (and contexts copied from it) to ``logger``.

    Text left without a final line break becomes a last line on exit.
    """
    token = _target.set(logger)
    try:
        yield
    finally:
        _target.reset(token)
        logger.flush_text()


def install_capture() -> None:
    """Put the capturing ``sys.stdout``, ``sys.stderr`` and root log handler in place.

    Cheap when they are in place already (the python executor calls it for every
    task), and puts back whichever was replaced since (a logging configuration that
    replaced the root handlers, a test runner's own streams). The replacements pass
    everything through unchanged outside :func:`captured_output`. Call it once
    logging is configured: a log handler created afterwards on ``sys.stdout`` would
    write into the capture.
    """
    root = logging.getLogger()
    if _in_place(root):
        return
    with _install_lock:
        if not isinstance(sys.stdout, _TaskStream):
            sys.stdout = _TaskStream(sys.stdout, logging.INFO)
        if not isinstance(sys.stderr, _TaskStream):
            sys.stderr = _TaskStream(sys.stderr, logging.WARNING)
        if _HANDLER not in root.handlers:
            root.addHandler(_HANDLER)


def _in_place(root: logging.Logger) -> bool:
    return (
        isinstance(sys.stdout, _TaskStream)
        and isinstance(sys.stderr, _TaskStream)
        and _HANDLER in root.handlers
    )


class _TaskStream:
    """A text stream that copies a running task's writes to its log."""

    def __init__(self, stream: TextIO, level: int) -> None:
        self._stream = stream
        self._level = level

    def write(self, text: str) -> int:
        logger = _target.get()
        if logger is None:
            return self._stream.write(text)
        logger.captured_text(self._level, text)
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class _TaskLogHandler(logging.Handler):
    """Adds a running task's log records to its log."""

    def emit(self, record: logging.LogRecord) -> None:
        logger = _target.get()
        if logger is None or record.name.startswith(_WORKER_LOGGERS):
            return
        try:
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + self.formatter_or_default().formatException(record.exc_info)
        except Exception:  # a bad record must not fail the task
            self.handleError(record)
            return
        logger.captured(record.levelno, message)

    def formatter_or_default(self) -> logging.Formatter:
        return self.formatter or logging.Formatter()


_HANDLER = _TaskLogHandler()
