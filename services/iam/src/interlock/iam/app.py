"""Wires the iam service: database, credentials, accounts, gRPC, authorizer and REST API."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from interlock.common.http import create_app as create_service_app
from interlock.common.identity import IdentityVerifier, parse_jwks
from interlock.common.postgres import MigrationSource, PostgresDatabase
from interlock.common.problems import problem_for, problem_response
from interlock.common.resources import Resource
from interlock.iam.accounts import Accounts
from interlock.iam.api import build_router
from interlock.iam.authorizer import Authorizer
from interlock.iam.authorizer_processes import AuthorizerProcesses
from interlock.iam.authz_server import AuthzServer
from interlock.iam.credentials import Credentials
from interlock.iam.errors import LockedOut
from interlock.iam.grpc import GrpcServer
from interlock.iam.secrets_api import build_secrets_router
from interlock.iam.session_api import build_session_router
from interlock.iam.settings import IamSettings
from interlock.iam.tenant_secrets import TenantSecrets

MIGRATIONS = MigrationSource(component="iam", location="interlock.iam.migrations")
"""IAM's tables."""


def create_app(settings: IamSettings | None = None) -> FastAPI:
    """Build the iam service's app. Default settings come from the environment."""
    settings = settings or IamSettings()
    database = PostgresDatabase(settings, migrations=[MIGRATIONS])
    credentials = Credentials(database, settings)
    accounts = Accounts(database, credentials, settings)
    tenant_secrets = TenantSecrets(database, settings, credentials.key_encryption_keys)
    # IAM verifies the identity tokens it signed against its own keyring (and keys
    # pinned in settings, e.g. a test's).
    pinned = parse_jwks(settings.identity_jwks) if settings.identity_jwks else {}
    identity = IdentityVerifier(_Keys(credentials, pinned), issuer=settings.jwt_issuer)
    grpc_server = GrpcServer(credentials, settings, tenant_secrets)
    authorizer = Authorizer(
        credentials.remembered, credentials.validate, credentials.identity_token
    )
    authz_server = AuthzServer(authorizer, settings)
    resources: list[Resource] = [database, credentials, accounts, grpc_server, authz_server]
    if settings.authorizer_processes > 1:
        resources.append(AuthorizerProcesses(settings))
    app = create_service_app(
        settings,
        resources=resources,
        routers=[
            build_router(accounts, credentials),
            build_secrets_router(tenant_secrets),
            build_session_router(accounts, credentials, settings),
        ],
        identity=identity,
    )
    app.add_exception_handler(LockedOut, _on_locked_out)
    return app


class _Keys:
    """IAM's keyring, then keys pinned in its settings."""

    def __init__(self, credentials: Credentials, pinned: dict[str, Ed25519PublicKey]) -> None:
        self._credentials = credentials
        self._pinned = pinned

    async def public_key(self, kid: str) -> Ed25519PublicKey | None:
        return self._pinned.get(kid) or await self._credentials.public_key(kid)


async def _on_locked_out(request: Request, exc: Exception) -> JSONResponse:
    # Every other IamError is answered by the common handler; this one adds Retry-After.
    assert isinstance(exc, LockedOut)
    response = problem_response(problem_for(exc), request)
    response.headers["retry-after"] = str(exc.retry_after_whole_s)
    return response
