"""Sending calls: credentials, token refresh, retries, paging and event streams.

:class:`SyncTransport` and :class:`AsyncTransport` do the same things, one with
``httpx.Client``, the other with ``httpx.AsyncClient``; what they decide is in
:class:`Credentials` and the module's functions, written once.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
from httpx_sse import EventSource
from pydantic import BaseModel

from interlock.client._calls import Call, EventStream, PagedCall, model
from interlock.client._errors import (
    ConnectionFailed,
    SessionEnded,
    StreamError,
    error_from_response,
)

T = TypeVar("T")

REFRESH_MARGIN_S = 30.0
"""A session's access token is refreshed this long before it expires."""
RETRY_BASE_DELAY_S = 0.2
"""First pause before a retry; it doubles with each one."""
STREAM_READ_TIMEOUT_S = 60.0
"""Silence after which an event stream counts as broken (servers send a comment every 15 s)."""
_TRANSIENT_STATUSES = frozenset({502, 503, 504})


class TokenPair(BaseModel):
    """What login and refresh answer."""

    access_token: str
    refresh_token: str
    token_type: str = "Bearer"  # noqa: S105 - the OAuth 2 token type, not a secret
    expires_in: int


@dataclass(frozen=True)
class Session:
    """A login's tokens: the access token and the one-use refresh token that renews it."""

    access_token: str
    refresh_token: str
    expires_at: float
    """When the access token expires (Unix seconds)."""

    @classmethod
    def from_pair(cls, pair: TokenPair, now: float | None = None) -> Session:
        """The session a login or refresh answer opens."""
        issued = time.time() if now is None else now
        return cls(pair.access_token, pair.refresh_token, issued + pair.expires_in)


SessionListener = Callable[[Session | None], None]
"""Told every new session (after login or refresh) and ``None`` after logout, e.g. to
store it."""


class Credentials:
    """What the client authenticates with: an API key, a session, or nothing.

    An API key wins over a session. A session is refreshed shortly before its access
    token expires and once after a 401, and ``on_session`` hears of each new one.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        session: Session | None = None,
        on_session: SessionListener | None = None,
    ) -> None:
        self.api_key = api_key
        self.session = session
        self.on_session = on_session

    def bearer(self) -> str | None:
        """The token to send, or ``None``."""
        if self.api_key:
            return self.api_key
        return self.session.access_token if self.session else None

    @property
    def refreshable(self) -> bool:
        """Whether a refresh could make a 401 go away."""
        return not self.api_key and self.session is not None

    def expires_soon(self, now: float | None = None) -> bool:
        """Whether the session's access token should be refreshed before use."""
        moment = time.time() if now is None else now
        return (
            self.refreshable
            and self.session is not None
            and (self.session.expires_at - moment < REFRESH_MARGIN_S)
        )

    def refresh_call(self) -> Call[TokenPair]:
        """The request that renews the session."""
        assert self.session is not None
        return Call(
            method="POST",
            path="/api/v1/auth/refresh",
            json={"refresh_token": self.session.refresh_token},
            parse=model(TokenPair),
            public=True,
        )

    def replace(self, session: Session | None) -> None:
        """Take a new session (``None``: none) and tell the listener."""
        self.session = session
        if self.on_session is not None:
            self.on_session(session)


def _headers(call: Call[Any], credentials: Credentials) -> dict[str, str]:
    headers = dict(call.headers)
    token = None if call.public else credentials.bearer()
    if token:
        headers["authorization"] = f"Bearer {token}"
    return headers


def _should_retry(call: Call[Any], error: Exception | None, status: int | None) -> bool:
    if isinstance(error, httpx.ConnectError | httpx.ConnectTimeout):
        return True  # the request never left
    if not call.replayable or call.upload is not None:
        return False
    if error is not None:
        return isinstance(error, httpx.TransportError)
    return status in _TRANSIENT_STATUSES


def _connection_failed(base_url: str, error: Exception) -> ConnectionFailed:
    reason = str(error) or type(error).__name__
    return ConnectionFailed(f"cannot reach the gateway at {base_url}: {reason}")


def _refresh_failed(error: Exception) -> SessionEnded:
    detail = "The session ended: log in again."
    return SessionEnded(
        status=401,
        type="urn:interlock:problem:unauthenticated",
        title="Session ended",
        detail=detail if not str(error) else f"{detail} ({error})",
    )


class SyncTransport:
    """Sends calls with ``httpx.Client``.

    Args:
        base_url: The gateway, e.g. ``http://127.0.0.1:8080``.
        credentials: What to authenticate with.
        timeout_s: Timeout of each request's connect, read and write. Default: 30 s.
        retries: Retries of a request that failed in transit or met a 502/503/504, when
            sending it again is safe (reads, PUT, DELETE, starts with an idempotency
            key). Default: 2.
        http: The ``httpx.Client`` to use. Default: a new one, closed with the transport.
    """

    def __init__(
        self,
        base_url: str,
        credentials: Credentials,
        *,
        timeout_s: float = 30.0,
        retries: int = 2,
        http: httpx.Client | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.credentials = credentials
        self.retries = retries
        self._owns_http = http is None
        self._http = http or httpx.Client(base_url=self.base_url, timeout=timeout_s)
        self._refresh_lock = threading.Lock()

    def close(self) -> None:
        """Close the connections (only those of an ``httpx.Client`` it created)."""
        if self._owns_http:
            self._http.close()

    def send(self, call: Call[T]) -> T:
        """Send ``call`` and read its answer.

        Raises:
            ApiError: The API answered an error (its subclass by status).
            ConnectionFailed: The gateway could not be reached.
        """
        with self._exchange(call, stream=call.download_to is not None) as response:
            if call.download_to is not None:
                partial = _partial(call.download_to)
                with partial.open("wb") as sink:
                    for chunk in response.iter_bytes():
                        sink.write(chunk)
                partial.replace(call.download_to)
            return call.parse(response)

    def pages(self, paged: PagedCall[T]) -> Iterator[T]:
        """Every item of a list, reading the next page when the previous one is used up."""
        token: str | None = None
        while True:
            page = self.send(paged.page(token))
            yield from page.items
            token = page.next_page_token
            if not token:
                return

    def events(self, stream: EventStream[T]) -> Iterator[T]:
        """The items of an event stream until its end event, reconnecting with the cursor."""
        cursor, failures = stream.after, 0
        while True:
            try:
                with self._exchange(stream.call(cursor), stream=True) as response:
                    for event in EventSource(response).iter_sse():
                        failures = 0
                        cursor = event.id or cursor
                        item = stream.parse(event)
                        if item is not None:
                            yield item
                        if stream.is_end(event):
                            return
            except (httpx.TransportError, ConnectionFailed) as error:
                failures += 1
                if failures > self.retries + 3:
                    raise StreamError(f"the event stream broke off: {error}") from error
                time.sleep(RETRY_BASE_DELAY_S * 2**failures)
            else:
                time.sleep(RETRY_BASE_DELAY_S)  # closed before its end: resume, unhurried

    @contextmanager
    def _exchange(self, call: Call[Any], *, stream: bool) -> Iterator[httpx.Response]:
        if not call.public and self.credentials.expires_soon():
            self._refresh(self.credentials.bearer())
        sent_with = self.credentials.bearer()
        response = self._send_with_retries(call, stream=stream)
        if response.status_code == 401 and not call.public and self.credentials.refreshable:
            response.close()
            self._refresh(sent_with)
            response = self._send_with_retries(call, stream=stream)
        try:
            if response.is_error:
                response.read()
                raise error_from_response(response)
            yield response
        finally:
            response.close()

    def _send_with_retries(self, call: Call[Any], *, stream: bool) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = self._send_once(call, stream=stream)
            except httpx.TransportError as error:
                if attempt >= self.retries or not _should_retry(call, error, None):
                    raise _connection_failed(self.base_url, error) from error
            else:
                if attempt >= self.retries or not _should_retry(call, None, response.status_code):
                    return response
                response.close()
            attempt += 1
            time.sleep(RETRY_BASE_DELAY_S * 2 ** (attempt - 1))

    def _send_once(self, call: Call[Any], *, stream: bool) -> httpx.Response:
        with ExitStack() as files:
            extra: dict[str, Any] = {}
            if call.upload is not None:
                handle = files.enter_context(call.upload.path.open("rb"))
                name = call.upload.filename or call.upload.path.name
                extra["files"] = {call.upload.form_field: (name, handle, call.upload.content_type)}
                extra["data"] = dict(call.upload.form)
            request = self._http.build_request(
                call.method,
                call.path,
                params=call.query(),
                json=call.json,
                content=call.content,
                headers=_headers(call, self.credentials),
                timeout=_timeout(self._http.timeout, stream),
                **extra,
            )
            return self._http.send(request, stream=stream)

    def _refresh(self, stale: str | None) -> None:
        with self._refresh_lock:
            if self.credentials.bearer() != stale or not self.credentials.refreshable:
                return  # another thread refreshed it meanwhile
            try:
                pair = self.send(self.credentials.refresh_call())
            except Exception as error:
                if getattr(error, "status", None) == 401:
                    self.credentials.replace(None)
                    raise _refresh_failed(error) from error
                raise
            self.credentials.replace(Session.from_pair(pair))


class AsyncTransport:
    """Sends calls with ``httpx.AsyncClient``; arguments as :class:`SyncTransport`'s."""

    def __init__(
        self,
        base_url: str,
        credentials: Credentials,
        *,
        timeout_s: float = 30.0,
        retries: int = 2,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.credentials = credentials
        self.retries = retries
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(base_url=self.base_url, timeout=timeout_s)
        self._refresh_lock = asyncio.Lock()

    async def close(self) -> None:
        """Close the connections (only those of an ``httpx.AsyncClient`` it created)."""
        if self._owns_http:
            await self._http.aclose()

    async def send(self, call: Call[T]) -> T:
        """Send ``call`` and read its answer (raises as :meth:`SyncTransport.send`)."""
        async with self._exchange(call, stream=call.download_to is not None) as response:
            if call.download_to is not None:
                partial = _partial(call.download_to)
                with partial.open("wb") as sink:
                    async for chunk in response.aiter_bytes():
                        sink.write(chunk)
                partial.replace(call.download_to)
            return call.parse(response)

    async def pages(self, paged: PagedCall[T]) -> AsyncIterator[T]:
        """Every item of a list, reading the next page when the previous one is used up."""
        token: str | None = None
        while True:
            page = await self.send(paged.page(token))
            for item in page.items:
                yield item
            token = page.next_page_token
            if not token:
                return

    async def events(self, stream: EventStream[T]) -> AsyncIterator[T]:
        """The items of an event stream until its end event, reconnecting with the cursor."""
        cursor, failures = stream.after, 0
        while True:
            try:
                async with self._exchange(stream.call(cursor), stream=True) as response:
                    async for event in EventSource(response).aiter_sse():
                        failures = 0
                        cursor = event.id or cursor
                        item = stream.parse(event)
                        if item is not None:
                            yield item
                        if stream.is_end(event):
                            return
            except (httpx.TransportError, ConnectionFailed) as error:
                failures += 1
                if failures > self.retries + 3:
                    raise StreamError(f"the event stream broke off: {error}") from error
                await asyncio.sleep(RETRY_BASE_DELAY_S * 2**failures)
            else:
                await asyncio.sleep(RETRY_BASE_DELAY_S)  # closed before its end: resume

    @asynccontextmanager
    async def _exchange(self, call: Call[Any], *, stream: bool) -> AsyncIterator[httpx.Response]:
        if not call.public and self.credentials.expires_soon():
            await self._refresh(self.credentials.bearer())
        sent_with = self.credentials.bearer()
        response = await self._send_with_retries(call, stream=stream)
        if response.status_code == 401 and not call.public and self.credentials.refreshable:
            await response.aclose()
            await self._refresh(sent_with)
            response = await self._send_with_retries(call, stream=stream)
        try:
            if response.is_error:
                await response.aread()
                raise error_from_response(response)
            yield response
        finally:
            await response.aclose()

    async def _send_with_retries(self, call: Call[Any], *, stream: bool) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = await self._send_once(call, stream=stream)
            except httpx.TransportError as error:
                if attempt >= self.retries or not _should_retry(call, error, None):
                    raise _connection_failed(self.base_url, error) from error
            else:
                if attempt >= self.retries or not _should_retry(call, None, response.status_code):
                    return response
                await response.aclose()
            attempt += 1
            await asyncio.sleep(RETRY_BASE_DELAY_S * 2 ** (attempt - 1))

    async def _send_once(self, call: Call[Any], *, stream: bool) -> httpx.Response:
        async with AsyncExitStack() as files:
            extra: dict[str, Any] = {}
            if call.upload is not None:
                handle = files.enter_context(call.upload.path.open("rb"))
                name = call.upload.filename or call.upload.path.name
                extra["files"] = {call.upload.form_field: (name, handle, call.upload.content_type)}
                extra["data"] = dict(call.upload.form)
            request = self._http.build_request(
                call.method,
                call.path,
                params=call.query(),
                json=call.json,
                content=call.content,
                headers=_headers(call, self.credentials),
                timeout=_timeout(self._http.timeout, stream),
                **extra,
            )
            return await self._http.send(request, stream=stream)

    async def _refresh(self, stale: str | None) -> None:
        async with self._refresh_lock:
            if self.credentials.bearer() != stale or not self.credentials.refreshable:
                return  # another task refreshed it meanwhile
            try:
                pair = await self.send(self.credentials.refresh_call())
            except Exception as error:
                if getattr(error, "status", None) == 401:
                    self.credentials.replace(None)
                    raise _refresh_failed(error) from error
                raise
            self.credentials.replace(Session.from_pair(pair))


def _partial(path: Path) -> Path:
    # A download lands whole or not at all: written beside, then renamed.
    return path.with_name(f".{path.name}.part")


def _timeout(default: httpx.Timeout, stream: bool) -> httpx.Timeout:
    # A stream may stay quiet between events for longer than a request may take.
    if not stream:
        return default
    return httpx.Timeout(
        connect=default.connect, read=STREAM_READ_TIMEOUT_S, write=default.write, pool=default.pool
    )
