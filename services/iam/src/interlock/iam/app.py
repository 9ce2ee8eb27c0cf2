"""Wires the iam service: database, credentials, accounts, gRPC, authorizer and REST API."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from interlock.common.http import create_app as create_service_app
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
from interlock.iam.settings import IamSettings

MIGRATIONS = MigrationSource(component="iam", location="interlock.iam.migrations")
"""IAM's tables."""


def create_app(settings: IamSettings | None = None) -> FastAPI:
    """Build the iam service's app. Default settings come from the environment."""
    settings = settings or IamSettings()
    database = PostgresDatabase(settings, migrations=[MIGRATIONS])
    credentials = Credentials(database, settings)
    accounts = Accounts(database, credentials, settings)
    grpc_server = GrpcServer(credentials, settings)
    authz_server = AuthzServer(Authorizer(credentials.remembered, credentials.validate), settings)
    resources: list[Resource] = [database, credentials, accounts, grpc_server, authz_server]
    if settings.authorizer_processes > 1:
        resources.append(AuthorizerProcesses(settings))
    app = create_service_app(
        settings,
        resources=resources,
        routers=[build_router(accounts, credentials)],
    )
    app.add_exception_handler(LockedOut, _on_locked_out)
    return app


async def _on_locked_out(request: Request, exc: Exception) -> JSONResponse:
    # Every other IamError is answered by the common handler; this one adds Retry-After.
    assert isinstance(exc, LockedOut)
    response = problem_response(problem_for(exc), request)
    response.headers["retry-after"] = str(exc.retry_after_whole_s)
    return response
