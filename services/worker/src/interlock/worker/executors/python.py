"""The ``python`` executor: calls a function registered with ``@task``."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import importlib
import inspect
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from interlock.worker.capture import captured_output, install_capture
from interlock.worker.context import TaskContext
from interlock.worker.errors import ExecutorUnavailable, InvalidParams
from interlock.worker.executors import parse_params
from interlock.worker.registry import TASKS, TaskRegistry
from interlock.worker.settings import WorkerSettings

__all__ = ["PythonExecutor"]


class _PythonParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    function: str = Field(min_length=1)
    args: dict[str, Any] = Field(default_factory=dict)


class PythonExecutor:
    """Calls ``{"function": "<name>", "args": {...}}`` with the args as keyword arguments.

    Functions are registered with :func:`interlock.worker.sdk.task`; the modules in
    setting ``python_task_modules`` are imported when the executor is created so their
    decorators run. Async functions are awaited on the worker's loop (and cancelled
    when the attempt is aborted); synchronous ones run in a pool of
    ``python_max_threads`` threads, with the task's context, and cannot be
    interrupted: they should check ``current_context().aborted``.

    What a function prints (stdout at ``INFO``, stderr at ``WARNING``) and logs with
    the standard ``logging`` module (at its level, loggers under ``interlock.``
    excepted) goes to the attempt's log line by line, as does what it logs with
    ``current_context().logger``.

    Failures: an unknown function name, or args that do not fit the function's
    signature, are bad params (not retryable); what the function raises is classified
    as for any executor.

    Args:
        settings: The worker's settings.
        registry: Where functions are looked up. Default: the process-wide registry.
    """

    def __init__(self, settings: WorkerSettings, registry: TaskRegistry = TASKS) -> None:
        for module in settings.python_task_modules:
            importlib.import_module(module)
        self._registry = registry
        self._threads = ThreadPoolExecutor(
            max_workers=settings.python_max_threads, thread_name_prefix="interlock-task"
        )

    async def aclose(self) -> None:
        """Stop the thread pool once running calls return."""
        await asyncio.to_thread(self._threads.shutdown, wait=True, cancel_futures=True)

    async def execute(self, params: Any, context: TaskContext) -> Any:
        """Call the function and return what it returns."""
        parsed = parse_params(_PythonParams, params)
        function = self._registry.get(parsed.function)
        if function is None:
            raise ExecutorUnavailable(
                f"no python task is registered as {parsed.function!r} on this worker",
                type_="UnknownFunction",
            )
        try:
            inspect.signature(function).bind(**parsed.args)
        except TypeError as error:
            raise InvalidParams(f"args do not fit {parsed.function}: {error}") from None
        # Installed at the first call, not at creation: the service configures its
        # logging after creating the app, and its handler must keep the real stdout.
        install_capture()
        with captured_output(context.logger):
            if inspect.iscoroutinefunction(function):
                return await function(**parsed.args)
            call = functools.partial(contextvars.copy_context().run, function, **parsed.args)
            return await asyncio.get_running_loop().run_in_executor(self._threads, call)
