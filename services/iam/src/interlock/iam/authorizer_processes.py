"""Extra authorizer processes: more of the machine for the gateway's checks.

One Python process answers a bounded number of checks a second (the interpreter
lock). With ``authorizer_processes`` above 1, IAM starts that many minus one more
processes, each with its own credentials cache, gRPC server (Check, ValidateToken) and
HTTP authorizer listener on the same ports as the main process (``SO_REUSEPORT``: the
kernel spreads the gateway's connections across them).
They learn revocations and key changes from PostgreSQL notifications (usually within
milliseconds), and exit when the main process goes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
from multiprocessing.process import BaseProcess

import uvloop

from interlock.common.logs import configure_logging
from interlock.common.postgres import PostgresDatabase
from interlock.common.resources import Lifecycle
from interlock.iam.authorizer import Authorizer
from interlock.iam.authz_server import AuthzServer
from interlock.iam.credentials import Credentials
from interlock.iam.grpc import GrpcServer
from interlock.iam.settings import IamSettings
from interlock.iam.tenant_secrets import TenantSecrets

logger = logging.getLogger(__name__)

_ORPHAN_CHECK_S = 1.0
_STOP_TIMEOUT_S = 5.0


class AuthorizerProcesses(Lifecycle):
    """The extra processes as a resource: started after the main one's authorizer.

    Args:
        settings: ``authorizer_processes`` (total, the main process included) and what
            each process needs to validate credentials.
    """

    name = "authorizer-processes"

    def __init__(self, settings: IamSettings) -> None:
        self._settings = settings
        self._processes: list[BaseProcess] = []

    async def start(self) -> None:
        """Start ``authorizer_processes - 1`` processes (spawned: no forked loop state)."""
        context = multiprocessing.get_context("spawn")
        for number in range(1, self._settings.authorizer_processes):
            process = context.Process(
                target=serve_authorizer,
                args=(self._settings, os.getpid()),
                name=f"iam-authorizer-{number}",
                daemon=True,
            )
            process.start()
            self._processes.append(process)
        if self._processes:
            logger.info("authorizer processes started", extra={"count": len(self._processes)})

    async def stop(self) -> None:
        """Terminate the processes and wait for them."""
        processes, self._processes = self._processes, []
        for process in processes:
            process.terminate()
        for process in processes:
            await asyncio.to_thread(process.join, _STOP_TIMEOUT_S)
            if process.is_alive():
                process.kill()

    async def check(self) -> None:
        """Raise unless every extra process is alive."""
        dead = [process.name for process in self._processes if not process.is_alive()]
        if dead:
            raise RuntimeError(f"authorizer processes exited: {', '.join(dead)}")


def serve_authorizer(settings: IamSettings, parent_pid: int) -> None:
    """Entry point of an extra process: authorize until the parent is gone or signalled."""
    configure_logging(settings.service_name, level=settings.log_level, fmt=settings.log_format)
    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(_serve(settings, parent_pid))


async def _serve(settings: IamSettings, parent_pid: int) -> None:
    # The main process applied the migrations before starting this one.
    database = PostgresDatabase(settings, application_name=f"{settings.service_name}-authorizer")
    credentials = Credentials(database, settings)
    async with (
        database,
        credentials,
        # The gRPC port is shared: every process must answer every service on it.
        GrpcServer(
            credentials,
            settings,
            TenantSecrets(database, settings, credentials.key_encryption_keys),
        ),
        AuthzServer(
            Authorizer(credentials.remembered, credentials.validate, credentials.identity_token),
            settings,
        ),
    ):
        while os.getppid() == parent_pid:  # noqa: ASYNC110 - a parent's exit has no event
            await asyncio.sleep(_ORPHAN_CHECK_S)
