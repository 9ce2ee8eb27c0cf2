"""Running one attempt's executor: params (secrets filled) in, JSON output out, in time."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping

from interlock.worker.attempts import Attempt
from interlock.worker.context import TaskContext
from interlock.worker.domain.outputs import encode_output
from interlock.worker.domain.redaction import Redactor
from interlock.worker.errors import ExecutorUnavailable, InvalidParams
from interlock.worker.executors import Executor
from interlock.worker.secrets import SecretResolver

_SECRET_REFERENCE = b"secrets."  # params without it need no look at IAM (the hot path)


async def execute(
    executors: Mapping[str, Executor],
    secrets: SecretResolver,
    attempt: Attempt,
    context: TaskContext,
) -> bytes:
    """Run the attempt's executor and return its output as JSON.

    ``{{ secrets.NAME }}`` in the params is filled from IAM just before, and the values
    are redacted from what the attempt reports (``attempt.redactor``).

    Raises:
        ExecutorUnavailable: No executor for the task's type.
        InvalidParams: The params are not JSON.
        TaskFailure: The output is not JSON or too large (not retryable), or a secret
            could not be read.
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
    if _SECRET_REFERENCE in scheduled.params_json:
        params, values = await secrets.fill(
            params,
            tenant=attempt.event.tenant,
            run_id=attempt.event.run_id,
            task_id=scheduled.task_id,
            attempt=scheduled.attempt,
        )
        attempt.redactor = Redactor(values)
    if scheduled.timeout_ms > 0:
        async with asyncio.timeout(scheduled.timeout_ms / 1000):
            output = await executor.execute(params, context)
    else:
        output = await executor.execute(params, context)
    return encode_output(output)
