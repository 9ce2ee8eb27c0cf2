"""Filling a task's ``{{ secrets.NAME }}`` references, at the last moment, from IAM.

The scheduler never sees a secret: it leaves the references in the params of
``task.scheduled``. Just before the executor runs, the worker asks IAM for the values
(gRPC ``SecretResolution``, with its service credential), fills them in, and keeps
them only in memory for that attempt, where they also serve to redact everything the
worker reports about it (:class:`~interlock.worker.domain.redaction.Redactor`).
"""

from __future__ import annotations

from typing import Any

import grpc

from interlock.common import templates
from interlock.common.grpc_tracing import traced_channel
from interlock.common.service_credentials import credential_metadata
from interlock.secrets.v1 import secrets_pb2, secrets_pb2_grpc
from interlock.worker.errors import TaskFailure
from interlock.worker.settings import WorkerSettings

__all__ = ["SecretResolver", "SecretsUnavailable"]

_PERMANENT = frozenset(
    {
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
    }
)


class SecretsUnavailable(TaskFailure):
    """The task's secrets could not be read (retryable unless no retry can help)."""


class SecretResolver:
    """Reads secrets from IAM for the tasks that refer to some.

    Args:
        settings: ``iam_grpc_target``, ``service_credential``, ``secrets_timeout_ms``.
    """

    def __init__(self, settings: WorkerSettings) -> None:
        self._target = settings.iam_grpc_target
        self._credential = settings.service_credential
        self._timeout_s = settings.secrets_timeout_ms / 1000
        self._channel: grpc.aio.Channel | None = None

    async def fill(
        self, params: Any, *, tenant: str, run_id: str, task_id: str, attempt: int
    ) -> tuple[Any, list[str]]:
        """``params`` with their secret references filled in, and the values used.

        Raises:
            SecretsUnavailable: No credential, no such secret, or IAM did not answer.
        """
        names = templates.secret_names(params)
        if not names:
            return params, []
        if self._credential is None:
            raise SecretsUnavailable(
                "this worker has no service credential to read secrets", retryable=False
            )
        request = secrets_pb2.ResolveSecretsRequest(
            tenant=tenant, names=sorted(names), run_id=run_id, task_id=task_id, attempt=attempt
        )
        try:
            response = await secrets_pb2_grpc.SecretResolutionStub(self._open()).ResolveSecrets(
                request, timeout=self._timeout_s, metadata=credential_metadata(self._credential)
            )
        except grpc.aio.AioRpcError as error:
            raise SecretsUnavailable(
                f"reading secrets failed: {error.code().name}: {error.details()}",
                retryable=error.code() not in _PERMANENT,
            ) from None
        values = dict(response.values)
        try:
            return templates.fill_secrets(params, values), list(values.values())
        except templates.TemplateError as error:
            raise SecretsUnavailable(str(error), retryable=False) from None

    def _open(self) -> grpc.aio.Channel:
        if self._channel is None:
            self._channel = traced_channel(self._target)
        return self._channel

    async def aclose(self) -> None:
        """Close the channel to IAM."""
        channel, self._channel = self._channel, None
        if channel is not None:
            await channel.close(grace=None)
