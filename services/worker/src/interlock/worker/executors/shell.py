"""The ``shell`` executor: runs an allow-listed program, without a shell."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from interlock.common.durations import parse_duration_ms
from interlock.worker.context import TaskContext, TaskLogger
from interlock.worker.errors import ExecutorUnavailable, InvalidParams, TaskFailure
from interlock.worker.executors import parse_params
from interlock.worker.settings import WorkerSettings

__all__ = ["CommandNotAllowed", "ShellExecutor"]


_INHERITED_ENV = frozenset({"PATH", "LANG", "LC_ALL", "TZ", "HOME", "TMPDIR"})
_READ_BYTES = 65_536
_MAX_LINE_BYTES = 32_768  # a log line keeps 8192 characters; UTF-8 takes at most 4 bytes each
TASK_ENV_PREFIX = "TASK_"
"""A task may set any variable whose name starts with this (no program or loader reads
such names), besides setting ``shell_task_env``."""


class CommandNotAllowed(TaskFailure):
    """The program is not in setting ``shell_allowed_commands``."""

    default_retryable = False


class _ShellParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    command: list[str]
    timeout: float | str | None = None
    timeout_ms: float | None = Field(default=None, gt=0)
    env: dict[str, str] | None = None
    stdin: str | None = None


class ShellExecutor:
    """Runs ``{"command": ["program", "arg", ...]}`` and returns its exit code and output.

    Off unless setting ``shell_enabled``; then only programs listed in
    ``shell_allowed_commands`` run (compared with ``argv[0]`` exactly as written). No
    shell is involved: pipes, globs and variables mean nothing. Params: ``command``
    (the argument list; the workflow service splits a string ``command`` when the
    definition is saved, before templates are filled, so run input never adds an
    argument: a string arriving here is refused), ``timeout`` (``"10s"``) or
    ``timeout_ms`` (default: setting ``shell_default_timeout_ms``), ``env`` (variables
    added to the program's environment, only ``TASK_*`` ones and those of setting
    ``shell_task_env``: never ``PATH``, ``LD_PRELOAD`` and the like), ``stdin`` (text).
    The program's environment is otherwise only ``PATH``, ``LANG``, ``LC_ALL``, ``TZ``,
    ``HOME`` and ``TMPDIR`` of the worker's.

    Output: ``{"exit_code", "stdout", "stderr", "stdout_truncated", "stderr_truncated"}``,
    each stream kept up to ``shell_max_output_bytes``. While the program runs, each
    line it writes goes to the attempt's log (stdout at ``INFO``, stderr at
    ``WARNING``), all of them, past that size too.

    Failures: a non-zero exit is retryable; a timeout kills the program and is
    retryable; a disabled executor, a program not allowed or bad params are not.
    """

    def __init__(self, settings: WorkerSettings) -> None:
        self._enabled = settings.shell_enabled
        self._allowed = frozenset(settings.shell_allowed_commands)
        self._max_bytes = settings.shell_max_output_bytes
        self._default_timeout_ms = settings.shell_default_timeout_ms
        self._task_env = frozenset(settings.shell_task_env)
        # Not the worker's own environment: it may hold credentials.
        self._base_env = {
            name: value for name, value in os.environ.items() if name in _INHERITED_ENV
        }

    async def execute(self, params: Any, context: TaskContext) -> Any:
        """Run the program and return its result."""
        if not self._enabled:
            raise ExecutorUnavailable("the shell executor is disabled on this worker")
        parsed = parse_params(_ShellParams, params)
        argv = parsed.command
        if not argv:
            raise InvalidParams("command: must name a program")
        if argv[0] not in self._allowed:
            raise CommandNotAllowed(f"{argv[0]!r} is not an allowed command")
        timeout_ms = parsed.timeout_ms
        if timeout_ms is None and parsed.timeout is not None:
            try:
                timeout_ms = parse_duration_ms(parsed.timeout)
            except ValueError as error:
                raise InvalidParams(f"timeout: {error}") from None
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE
            if parsed.stdin is not None
            else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self._environment(parsed.env or {}),
        )
        stdout = _Output(self._max_bytes, context.logger, logging.INFO)
        stderr = _Output(self._max_bytes, context.logger, logging.WARNING)
        try:
            async with asyncio.timeout((timeout_ms or self._default_timeout_ms) / 1000):
                await asyncio.gather(
                    _feed(process, parsed.stdin),
                    stdout.read(process.stdout),
                    stderr.read(process.stderr),
                )
                await process.wait()
        except TimeoutError:
            await _kill(process)
            raise TimeoutError(f"{argv[0]} did not finish in time; killed") from None
        except asyncio.CancelledError:
            await _kill(process)
            raise
        output = {
            "exit_code": process.returncode,
            **stdout.fields("stdout"),
            **stderr.fields("stderr"),
        }
        if process.returncode != 0:
            raise TaskFailure(
                f"{argv[0]} exited with {process.returncode}: "
                f"{output['stderr'][-500:] or output['stdout'][-500:]}",
                type_="CommandFailed",
            )
        return output

    def _environment(self, task_env: dict[str, str]) -> dict[str, str]:
        refused = sorted(
            name
            for name in task_env
            if name not in self._task_env and not name.startswith(TASK_ENV_PREFIX)
        )
        if refused:
            raise InvalidParams(
                f"env: {', '.join(refused)} may not be set by a task (allowed: "
                f"{TASK_ENV_PREFIX}*, {', '.join(sorted(self._task_env)) or 'nothing else'})"
            )
        return {**self._base_env, **task_env}


class _Output:
    """One output stream of the program.

    Kept (up to a size) for the task's output, and sent to the attempt's log line by
    line as it is written.
    """

    def __init__(self, max_bytes: int, logger: TaskLogger, level: int) -> None:
        self._max_bytes = max_bytes
        self._logger = logger
        self._level = level
        self._kept = bytearray()
        self._truncated = False
        self._partial = bytearray()

    async def read(self, stream: asyncio.StreamReader | None) -> None:
        if stream is None:
            return
        while chunk := await stream.read(_READ_BYTES):
            room = self._max_bytes - len(self._kept)
            self._kept += chunk[:room]
            self._truncated = self._truncated or len(chunk) > room
            self._log_lines(chunk)
        if self._partial:
            self._log(bytes(self._partial))
            self._partial.clear()

    def fields(self, name: str) -> dict[str, Any]:
        return {name: self._kept.decode(errors="replace"), f"{name}_truncated": self._truncated}

    def _log_lines(self, chunk: bytes) -> None:
        *lines, rest = (bytes(self._partial) + chunk).split(b"\n")
        for line in lines:
            self._log(line)
        # A line longer than a log line is cut there rather than held in memory.
        self._partial = bytearray(rest[:_MAX_LINE_BYTES])

    def _log(self, line: bytes) -> None:
        self._logger.captured(self._level, line.removesuffix(b"\r").decode(errors="replace"))


async def _feed(process: asyncio.subprocess.Process, text: str | None) -> None:
    if text is None or process.stdin is None:
        return
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        process.stdin.write(text.encode())
        await process.stdin.drain()
    process.stdin.close()


async def _kill(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    await process.wait()
