"""The ``shell`` executor: runs an allow-listed program, without a shell."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from interlock.common.durations import parse_duration_ms
from interlock.worker.context import TaskContext
from interlock.worker.errors import ExecutorUnavailable, InvalidParams, TaskFailure
from interlock.worker.executors import parse_params
from interlock.worker.settings import WorkerSettings

__all__ = ["CommandNotAllowed", "ShellExecutor"]


_INHERITED_ENV = frozenset({"PATH", "LANG", "LC_ALL", "TZ", "HOME", "TMPDIR"})


class CommandNotAllowed(TaskFailure):
    """The program is not in setting ``shell_allowed_commands``."""

    default_retryable = False


class _ShellParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    command: list[str] | str
    timeout: float | str | None = None
    timeout_ms: float | None = Field(default=None, gt=0)
    env: dict[str, str] | None = None
    stdin: str | None = None


class ShellExecutor:
    """Runs ``{"command": ["program", "arg", ...]}`` and returns its exit code and output.

    Off unless setting ``shell_enabled``; then only programs listed in
    ``shell_allowed_commands`` run (compared with ``argv[0]`` exactly as written). No
    shell is involved: a string command is split like a shell would (``shlex``) but
    pipes, globs and variables mean nothing. Params: ``command``, ``timeout`` (``"10s"``)
    or ``timeout_ms`` (default: setting ``shell_default_timeout_ms``), ``env`` (the
    whole environment of the program; default: only ``PATH``, ``LANG``, ``LC_ALL``,
    ``TZ``, ``HOME`` and ``TMPDIR`` of the worker's), ``stdin`` (text).

    Output: ``{"exit_code", "stdout", "stderr", "stdout_truncated", "stderr_truncated"}``,
    each stream kept up to ``shell_max_output_bytes``.

    Failures: a non-zero exit is retryable; a timeout kills the program and is
    retryable; a disabled executor, a program not allowed or bad params are not.
    """

    def __init__(self, settings: WorkerSettings) -> None:
        self._enabled = settings.shell_enabled
        self._allowed = frozenset(settings.shell_allowed_commands)
        self._max_bytes = settings.shell_max_output_bytes
        self._default_timeout_ms = settings.shell_default_timeout_ms
        # Not the worker's own environment: it may hold credentials.
        self._base_env = {
            name: value for name, value in os.environ.items() if name in _INHERITED_ENV
        }

    async def execute(self, params: Any, context: TaskContext) -> Any:
        """Run the program and return its result."""
        if not self._enabled:
            raise ExecutorUnavailable("the shell executor is disabled on this worker")
        parsed = parse_params(_ShellParams, params)
        argv = shlex.split(parsed.command) if isinstance(parsed.command, str) else parsed.command
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
            env=parsed.env if parsed.env is not None else self._base_env,
        )
        try:
            async with asyncio.timeout((timeout_ms or self._default_timeout_ms) / 1000):
                stdout, stderr = await process.communicate(
                    parsed.stdin.encode() if parsed.stdin is not None else None
                )
        except TimeoutError:
            await _kill(process)
            raise TimeoutError(f"{argv[0]} did not finish in time; killed") from None
        except asyncio.CancelledError:
            await _kill(process)
            raise
        output = {
            "exit_code": process.returncode,
            **self._stream("stdout", stdout),
            **self._stream("stderr", stderr),
        }
        if process.returncode != 0:
            raise TaskFailure(
                f"{argv[0]} exited with {process.returncode}: "
                f"{output['stderr'][-500:] or output['stdout'][-500:]}",
                type_="CommandFailed",
            )
        return output

    def _stream(self, name: str, data: bytes) -> dict[str, Any]:
        return {
            name: data[: self._max_bytes].decode(errors="replace"),
            f"{name}_truncated": len(data) > self._max_bytes,
        }


async def _kill(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    await process.wait()
