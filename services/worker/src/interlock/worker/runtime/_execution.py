"""Running one attempt's executor: params in, JSON output out, within the task's timeout."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping

from interlock.worker.attempts import Attempt
from interlock.worker.context import TaskContext
from interlock.worker.errors import ExecutorUnavailable, InvalidParams, TaskFailure
from interlock.worker.executors import Executor


async def execute(
    executors: Mapping[str, Executor], attempt: Attempt, context: TaskContext
) -> bytes:
    """Run the attempt's executor and return its output as JSON.

    Raises:
        ExecutorUnavailable: No executor for the task's type.
        InvalidParams: The params are not JSON.
        TaskFailure: The output is not JSON (not retryable).
        TimeoutError: The task's timeout passed.
    """
    scheduled = attempt.scheduled
    executor = executors.get(scheduled.type)
    if executor is None:
        raise ExecutorUnavailable(
            f"this worker has no executor for task type {scheduled.type!r}",
            type_="UnknownTaskType",
        )
    try:
        params = json.loads(scheduled.params_json) if scheduled.params_json else {}
    except ValueError as error:
        raise InvalidParams(f"params are not JSON: {error}") from None
    if scheduled.timeout_ms > 0:
        async with asyncio.timeout(scheduled.timeout_ms / 1000):
            output = await executor.execute(params, context)
    else:
        output = await executor.execute(params, context)
    try:
        return json.dumps(output, separators=(",", ":"), allow_nan=False).encode()
    except (TypeError, ValueError) as error:
        raise TaskFailure(
            f"the task's output is not JSON: {error}", retryable=False, type_="InvalidOutput"
        ) from None
