"""``interlock.secrets.v1.SecretResolution`` (thin): tenant secrets for workers.

Served on IAM's gRPC listener. Each call must carry a service credential
(:mod:`interlock.common.service_credentials`); a user's token is not one.
"""

from __future__ import annotations

import asyncio

import grpc

from interlock.common.errors import grpc_code_name
from interlock.common.service_credentials import is_valid_credential
from interlock.iam.errors import IamError
from interlock.iam.settings import IamSettings
from interlock.iam.tenant_secrets import TenantSecrets
from interlock.secrets.v1 import secrets_pb2, secrets_pb2_grpc

_RESOLVE_TIMEOUT_S = 10.0
_MAX_NAMES = 100


class SecretResolutionService(secrets_pb2_grpc.SecretResolutionServicer):
    """Hands the values of named secrets to a worker, for one task attempt.

    Args:
        secrets: The use cases.
        settings: ``service_credentials``, the credentials accepted.
        loop: The event loop the database work runs on (calls arrive on the server's
            threads).
    """

    def __init__(
        self, secrets: TenantSecrets, settings: IamSettings, loop: asyncio.AbstractEventLoop
    ) -> None:
        self._secrets = secrets
        self._accepted = settings.service_credentials
        self._loop = loop

    def ResolveSecrets(
        self, request: secrets_pb2.ResolveSecretsRequest, context: grpc.ServicerContext
    ) -> secrets_pb2.ResolveSecretsResponse:
        """The values, or UNAUTHENTICATED, INVALID_ARGUMENT, NOT_FOUND, UNAVAILABLE."""
        if not is_valid_credential(context.invocation_metadata() or (), self._accepted):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "a service credential is required")
        if not request.tenant or not request.names or len(request.names) > _MAX_NAMES:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"a tenant and 1 to {_MAX_NAMES} names")
        lookup = self._secrets.resolve(
            request.tenant,
            list(request.names),
            run_id=request.run_id,
            task_id=request.task_id,
            attempt=request.attempt,
        )
        try:
            values = asyncio.run_coroutine_threadsafe(lookup, self._loop).result(
                timeout=_RESOLVE_TIMEOUT_S
            )
        except IamError as error:
            context.abort(grpc.StatusCode[grpc_code_name(error)], str(error))
        return secrets_pb2.ResolveSecretsResponse(values=values)
