"""The two clients: :class:`Client` (blocking) and :class:`AsyncClient` (asyncio)."""

from __future__ import annotations

from types import TracebackType
from typing import Generic, Self

import httpx

from interlock.client._artifacts import Artifacts
from interlock.client._iam import ApiKeys, Auth, Secrets, Tenants, Users
from interlock.client._metadata import Executions, Logs
from interlock.client._notifications import Deliveries, Subscriptions
from interlock.client._operations import Async, Mode, Sync
from interlock.client._runs import Runs
from interlock.client._scheduler import DeadLetters, Timers
from interlock.client._transport import (
    AsyncTransport,
    Credentials,
    Session,
    SessionListener,
    SyncTransport,
)
from interlock.client._workflows import Workflows

DEFAULT_GATEWAY = "http://127.0.0.1:8080"
"""The gateway of ``make up``."""


class _Resources(Generic[Mode]):
    def __init__(self, transport: SyncTransport | AsyncTransport) -> None:
        self.auth: Auth[Mode] = Auth(transport)
        self.users: Users[Mode] = Users(transport)
        self.tenants: Tenants[Mode] = Tenants(transport)
        self.api_keys: ApiKeys[Mode] = ApiKeys(transport)
        self.secrets: Secrets[Mode] = Secrets(transport)
        self.workflows: Workflows[Mode] = Workflows(transport)
        self.runs: Runs[Mode] = Runs(transport)
        self.dead_letters: DeadLetters[Mode] = DeadLetters(transport)
        self.timers: Timers[Mode] = Timers(transport)
        self.executions: Executions[Mode] = Executions(transport)
        self.logs: Logs[Mode] = Logs(transport)
        self.subscriptions: Subscriptions[Mode] = Subscriptions(transport)
        self.deliveries: Deliveries[Mode] = Deliveries(transport)
        self.artifacts: Artifacts[Mode] = Artifacts(transport)


class Client(_Resources[Sync]):
    """Interlock's REST API through its gateway, blocking.

    Example::

        with Client("http://127.0.0.1:8080") as client:
            client.login("admin", "interlock-admin")
            run = client.runs.start("nightly", {"day": "2026-12-05"})
            for summary in client.runs.list(status="failed"):
                print(summary.run_id)

    Args:
        gateway: The gateway's URL. Default: :data:`DEFAULT_GATEWAY`.
        api_key: An API key (``ilk_...``); it wins over ``session``. Default: none.
        session: Tokens of an earlier login, refreshed as they expire. Default: none.
        on_session: Told of every new session (login, refresh) and of ``None`` at logout,
            e.g. to store it. Default: none.
        timeout_s: Timeout of each request's connect, read and write. Default: 30 s.
        retries: Retries of a request that failed in transit or met a 502/503/504, when
            sending it again is safe. Default: 2.
        http: An ``httpx.Client`` to send with (its base URL must be the gateway).
            Default: the client's own.
    """

    def __init__(
        self,
        gateway: str = DEFAULT_GATEWAY,
        *,
        api_key: str | None = None,
        session: Session | None = None,
        on_session: SessionListener | None = None,
        timeout_s: float = 30.0,
        retries: int = 2,
        http: httpx.Client | None = None,
    ) -> None:
        credentials = Credentials(api_key=api_key, session=session, on_session=on_session)
        self._transport = SyncTransport(
            gateway, credentials, timeout_s=timeout_s, retries=retries, http=http
        )
        super().__init__(self._transport)

    @property
    def session(self) -> Session | None:
        """The current session, or ``None``."""
        return self._transport.credentials.session

    def login(self, username: str, password: str, tenant: str | None = None) -> Session:
        """Log in and use the session from now on. ``tenant`` default: the system tenant."""
        session = Session.from_pair(self.auth.login(username, password, tenant))
        self._transport.credentials.replace(session)
        return session

    def logout(self) -> None:
        """End the session on the server and forget it."""
        self.auth.logout()
        self._transport.credentials.replace(None)

    def close(self) -> None:
        """Close the connections."""
        self._transport.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class AsyncClient(_Resources[Async]):
    """Interlock's REST API through its gateway, for asyncio; arguments as :class:`Client`'s.

    Example::

        async with AsyncClient(api_key=os.environ["INTERLOCK_API_KEY"]) as client:
            run = await client.runs.start("nightly")
            async for line in client.logs.stream(run.run_id):
                print(line.message)
    """

    def __init__(
        self,
        gateway: str = DEFAULT_GATEWAY,
        *,
        api_key: str | None = None,
        session: Session | None = None,
        on_session: SessionListener | None = None,
        timeout_s: float = 30.0,
        retries: int = 2,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        credentials = Credentials(api_key=api_key, session=session, on_session=on_session)
        self._transport = AsyncTransport(
            gateway, credentials, timeout_s=timeout_s, retries=retries, http=http
        )
        super().__init__(self._transport)

    @property
    def session(self) -> Session | None:
        """The current session, or ``None``."""
        return self._transport.credentials.session

    async def login(self, username: str, password: str, tenant: str | None = None) -> Session:
        """Log in and use the session from now on. ``tenant`` default: the system tenant."""
        session = Session.from_pair(await self.auth.login(username, password, tenant))
        self._transport.credentials.replace(session)
        return session

    async def logout(self) -> None:
        """End the session on the server and forget it."""
        await self.auth.logout()
        self._transport.credentials.replace(None)

    async def close(self) -> None:
        """Close the connections."""
        await self._transport.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()
