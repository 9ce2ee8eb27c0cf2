"""What a running task sees of its attempt: ids, heartbeats, a logger, artifacts."""

from __future__ import annotations

import contextvars
import json
import logging
import os
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from interlock.common.strict_json import storable_value

__all__ = [
    "ArtifactData",
    "ArtifactRef",
    "ArtifactStore",
    "ArtifactStoreFactory",
    "ArtifactsUnavailable",
    "LogLine",
    "TaskContext",
    "TaskLogger",
    "current_context",
    "level_name",
]

_log = logging.getLogger("interlock.task")
_MAX_LINE_CHARS = 8192
_MAX_BUFFERED_LINES = 10_000

_current: contextvars.ContextVar[TaskContext] = contextvars.ContextVar("interlock_task_context")


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line a task logged.

    Attributes:
        time: When it was logged (UTC).
        level: ``DEBUG``, ``INFO``, ``WARNING`` or ``ERROR``.
        message: The formatted message, at most 8192 characters.
        seq: Its position in the attempt's log, from 1 (a line dropped from a full
            buffer leaves a gap).
    """

    time: datetime
    level: str
    message: str
    seq: int


_LEVELS = {
    logging.DEBUG: "DEBUG",
    logging.INFO: "INFO",
    logging.WARNING: "WARNING",
    logging.ERROR: "ERROR",
}


def level_name(level: int) -> str:
    """The task log level of a ``logging`` level number.

    A task log knows four: below INFO is DEBUG, above ERROR is ERROR, a level between
    two is the lower one.
    """
    for number in (logging.ERROR, logging.WARNING, logging.INFO):
        if level >= number:
            return _LEVELS[number]
    return "DEBUG"


class TaskLogger:
    """A logger whose lines are published as ``task.log`` with the attempt's ids.

    Lines are buffered and sent in batches while the task runs (every
    ``log_flush_interval_ms``, and before the attempt's outcome), each numbered in
    the order it was written. Lines written through this logger also go to the
    worker's own log; lines the worker captured (a python task's ``print`` and
    ``logging``, a shell task's output) do not. Safe to call from threads. When more
    than 10,000 lines wait, the oldest are dropped.

    Args:
        extra: Fields added to the worker's own log records (run, task, attempt).
    """

    def __init__(self, extra: dict[str, Any] | None = None) -> None:
        self._lines: deque[LogLine] = deque(maxlen=_MAX_BUFFERED_LINES)
        self._extra = extra or {}
        self._lock = threading.Lock()
        self._seq = 0
        self._partial: dict[str, str] = {}

    def debug(self, message: str, *args: object) -> None:
        """Log ``message % args`` at DEBUG."""
        self._write(logging.DEBUG, message, args)

    def info(self, message: str, *args: object) -> None:
        """Log ``message % args`` at INFO."""
        self._write(logging.INFO, message, args)

    def warning(self, message: str, *args: object) -> None:
        """Log ``message % args`` at WARNING."""
        self._write(logging.WARNING, message, args)

    def error(self, message: str, *args: object) -> None:
        """Log ``message % args`` at ERROR."""
        self._write(logging.ERROR, message, args)

    def captured(self, level: int, message: str) -> None:
        """Add a line the worker captured from the task (not repeated in its own log).

        Args:
            level: A ``logging`` level number.
            message: The line, without its line break.
        """
        self._append(level_name(level), message)

    def captured_text(self, level: int, text: str) -> None:
        """Add written text (``print``), line by line.

        Each complete line becomes a log line; the rest waits for the next write or
        :meth:`flush_text`.

        Args:
            level: A ``logging`` level number; text of each level is buffered apart.
            text: What was written.
        """
        name = level_name(level)
        with self._lock:
            pending = self._partial.pop(name, "") + text
            *complete, rest = pending.split("\n")
            if rest:
                self._partial[name] = rest[-_MAX_LINE_CHARS:]
        for line in complete:
            self._append(name, line)

    def flush_text(self) -> None:
        """Add the text written without a final line break as a last line."""
        with self._lock:
            partial, self._partial = self._partial, {}
        for name, line in partial.items():
            self._append(name, line)

    @property
    def last_seq(self) -> int:
        """How many lines were written so far (the ``seq`` of the last one)."""
        return self._seq

    def drain(self) -> list[LogLine]:
        """Remove and return the lines not published yet (the worker calls this)."""
        lines: list[LogLine] = []
        while True:
            try:
                lines.append(self._lines.popleft())
            except IndexError:
                return lines

    def _write(self, level: int, message: str, args: tuple[object, ...]) -> None:
        text = message % args if args else message
        self._append(level_name(level), text)
        _log.log(level, text, extra=self._extra)

    def _append(self, level: str, message: str) -> None:
        with self._lock:
            # Numbered and queued under one lock: lines of two threads keep their order.
            self._seq += 1
            self._lines.append(
                LogLine(
                    time=datetime.now(UTC),
                    level=level,
                    message=message[:_MAX_LINE_CHARS],
                    seq=self._seq,
                )
            )


@dataclass(frozen=True, slots=True)
class ArtifactRef:
    """An uploaded artifact.

    Attributes:
        artifact_id: The artifact service's id.
        name: The name it was uploaded under.
        size_bytes: Its size.
        sha256: Hex SHA-256 of its bytes. Default: empty (unknown).
    """

    artifact_id: str
    name: str
    size_bytes: int
    sha256: str = ""

    def reference(self) -> dict[str, Any]:
        """What a task's output carries to point at it: ``{artifact_id, name, size, sha256}``."""
        return {
            "artifact_id": self.artifact_id,
            "name": self.name,
            "size": self.size_bytes,
            "sha256": self.sha256,
        }


ArtifactData = bytes | str | os.PathLike[str]
"""An artifact's content: the bytes, or the path of a file holding them."""


@runtime_checkable
class ArtifactStore(Protocol):
    """Where tasks upload the files they produce, and read the run's artifacts back."""

    async def upload(
        self,
        name: str,
        data: ArtifactData,
        *,
        content_type: str = "application/octet-stream",
    ) -> ArtifactRef:
        """Store ``data`` as the attempt's artifact ``name``.

        Args:
            name: File name (no path), at most 255 bytes.
            data: The content, or the path of a file to stream (``str`` or a path).
            content_type: Media type. Default: ``application/octet-stream``.

        Returns:
            The stored artifact.
        """
        ...

    async def download(self, name_or_id: str) -> bytes:
        """The bytes of the run's artifact with this id, or its newest with this name."""
        ...


ArtifactStoreFactory = Callable[["TaskContext"], ArtifactStore]
"""Gives each attempt its artifact store (the worker calls it as the attempt starts,
with the context whose ids name the artifacts)."""


class ArtifactsUnavailable(Exception):
    """Raised by the default artifact store: this worker has no artifact service."""


class _NoArtifactStore:
    async def upload(
        self,
        name: str,
        data: ArtifactData,
        *,
        content_type: str = "application/octet-stream",
    ) -> ArtifactRef:
        raise ArtifactsUnavailable("artifact upload is not available on this worker")

    async def download(self, name_or_id: str) -> bytes:
        raise ArtifactsUnavailable("artifact download is not available on this worker")


@dataclass(eq=False, kw_only=True)
class TaskContext:
    """One attempt of one task, as its executor sees it.

    Attributes:
        tenant: Tenant of the run.
        run_id: The run.
        task_id: The task within the run.
        attempt: Attempt number, from 1.
        task_type: The executor's name, e.g. ``"http"``.
        idempotency_key: Stable for the attempt: use it to make side effects
            idempotent (it does not change when the worker re-runs a redelivered
            attempt).
        worker_id: The worker running it.
        logger: Lines logged here are published as ``task.log``.
        artifacts: Where to upload files. Default: a store that raises
            :class:`ArtifactsUnavailable`.
    """

    tenant: str
    run_id: str
    task_id: str
    attempt: int
    task_type: str
    idempotency_key: str
    worker_id: str
    logger: TaskLogger = field(default_factory=TaskLogger)
    artifacts: ArtifactStore = field(default_factory=_NoArtifactStore)
    _heartbeat_details: bytes = b""
    # A plain flag, not a threading.Event: setting and reading an attribute is atomic,
    # and one Event (a lock and a condition) per attempt is measurable per task.
    _aborted: bool = False

    def heartbeat(self, details: Any = None) -> None:
        """Report progress; it is sent with the attempt's next heartbeat.

        The worker heartbeats running tasks on its own; call this to attach details
        (any JSON-serialisable value). Safe to call from threads.

        Args:
            details: Progress detail, e.g. ``{"rows": 1200}``. Default: none.

        Raises:
            TypeError: When ``details`` is not JSON-serialisable.
        """
        self._heartbeat_details = (
            b"" if details is None else json.dumps(storable_value(details)).encode()
        )

    @property
    def heartbeat_details(self) -> bytes:
        """The latest details given to :meth:`heartbeat`, as JSON (empty when none)."""
        return self._heartbeat_details

    @property
    def aborted(self) -> bool:
        """Whether the worker is stopping this attempt (run cancelled, shut-down).

        Async code is cancelled; synchronous code running in a thread cannot be, so
        it should check this between steps and return early.
        """
        return self._aborted

    def abort(self) -> None:
        """Mark the attempt as being stopped (the worker calls this)."""
        self._aborted = True

    def activate(self) -> contextvars.Token[TaskContext]:
        """Make this the context :func:`current_context` returns (the worker calls this)."""
        return _current.set(self)


def current_context() -> TaskContext:
    """Return the context of the task running in this thread or coroutine.

    Raises:
        LookupError: When called outside a running task.
    """
    try:
        return _current.get()
    except LookupError:
        raise LookupError("no Interlock task is running here") from None
