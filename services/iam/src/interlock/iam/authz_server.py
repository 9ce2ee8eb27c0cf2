"""The gateway's authorizer over HTTP: Envoy's ext_authz ``http_service`` (thin).

For every API request Envoy sends IAM the request's method, path and
``Authorization`` header, or a browser's ``Cookie`` and ``x-interlock-csrf`` (no
body) on a keep-alive HTTP/1.1 connection, and IAM answers ``200`` with the identity
token to forward, or the status, headers and problem document the client gets. Any
``5xx`` (IAM failing) makes the gateway answer 503: it never opens.

Served by a bare ``asyncio`` protocol with ``httptools`` (the parser uvicorn uses)
on the service's event loop rather than by a web framework or gRPC: this is the
hottest path of the platform, a known credential is answered from memory in the
protocol callback itself, and that costs about a tenth of the CPU of a grpcio
``Check`` call (``bench/auth.py``). A credential not in memory is looked up in a
task; answers on a connection keep the order of its requests.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import http
import logging
from typing import cast

import httptools

from interlock.common.problems import PROBLEM_CONTENT_TYPE
from interlock.common.resources import Lifecycle
from interlock.iam.authorizer import SAFE_HEADER_VALUE, Allow, Authorizer, Deny
from interlock.iam.domain import CSRF_HEADER
from interlock.iam.settings import IamSettings

logger = logging.getLogger(__name__)

_AUTHORIZATION = b"authorization"
_COOKIE = b"cookie"
_CSRF = CSRF_HEADER.encode("ascii")
_MAX_URL_BYTES = 64 * 1024  # Envoy refuses longer request headers (60 KiB) anyway
_BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
_FAILED = b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n"


class _Request:
    __slots__ = ("authorization", "cookie", "csrf", "head", "keep_alive", "method", "url")

    def __init__(self) -> None:
        self.url = b""
        self.authorization: str | None = None
        self.cookie: str | None = None
        self.csrf: str | None = None
        self.method = ""
        self.head = False
        self.keep_alive = True


class _CheckProtocol(asyncio.Protocol):
    """One connection from Envoy: parse requests, answer each in order."""

    def __init__(self, authorizer: Authorizer, connections: set[_CheckProtocol]) -> None:
        self._authorizer = authorizer
        self._connections = connections
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._request = _Request()
        # Requests waiting behind a lookup (only while one is in flight).
        self._waiting: collections.deque[_Request] = collections.deque()
        self._lookup: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not derive from asyncio.Transport, but are one.
        self._transport = cast(asyncio.Transport, transport)
        self._connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._connections.discard(self)
        self._transport = None
        if self._lookup is not None:
            self._lookup.cancel()

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            self._refuse()

    # --- httptools callbacks --------------------------------------------------------

    def on_message_begin(self) -> None:
        self._request = _Request()

    def on_url(self, url: bytes) -> None:
        # The parser may hand the URL over in pieces.
        self._request.url += url
        if len(self._request.url) > _MAX_URL_BYTES:
            raise httptools.HttpParserError("URL too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == _AUTHORIZATION:
            self._request.authorization = value.decode("latin-1")
        elif name == _COOKIE:
            self._request.cookie = value.decode("latin-1")
        elif name == _CSRF:
            self._request.csrf = value.decode("latin-1")

    def on_message_complete(self) -> None:
        request = self._request
        request.method = self._parser.get_method().decode("ascii")
        request.head = request.method == "HEAD"
        request.keep_alive = self._parser.should_keep_alive()
        if self._waiting:
            self._waiting.append(request)
            return
        decision = self._authorizer.decide_from_memory(
            request.method,
            request.url.decode("latin-1"),
            request.authorization,
            request.cookie,
            request.csrf,
        )
        if decision is None:
            self._waiting.append(request)
            self._lookup = asyncio.get_running_loop().create_task(self._look_up())
        else:
            self._answer(request, _encode_or_fail(decision, head=request.head))

    # --- answering ------------------------------------------------------------------

    async def _look_up(self) -> None:
        while self._waiting:
            request = self._waiting[0]
            try:
                decision = await self._authorizer.decide(
                    request.method,
                    request.url.decode("latin-1"),
                    request.authorization,
                    request.cookie,
                    request.csrf,
                )
            except Exception:  # the gateway answers 503: never let a failure through
                logger.exception("authorization failed")
                answer = _FAILED
            else:
                answer = _encode_or_fail(decision, head=request.head)
            self._waiting.popleft()
            self._answer(request, answer)
        self._lookup = None

    def _answer(self, request: _Request, answer: bytes) -> None:
        if self._transport is None:
            return
        self._transport.write(answer)
        if not request.keep_alive:
            self._transport.close()

    def _refuse(self) -> None:
        if self._transport is not None:
            self._transport.write(_BAD_REQUEST)
            self._transport.close()

    def close(self) -> None:
        """Close the connection (the server is stopping)."""
        if self._transport is not None:
            self._transport.close()


def _encode_or_fail(decision: Allow | Deny, *, head: bool) -> bytes:
    try:
        return _encode(decision, head=head)
    except ValueError:
        logger.exception("authorization answer cannot be sent")
        return _FAILED


def _encode(decision: Allow | Deny, *, head: bool) -> bytes:
    if isinstance(decision, Allow):
        return _allowed(decision.headers)
    headers = [("content-type", PROBLEM_CONTENT_TYPE)]
    if decision.unauthenticated:
        headers.append(("www-authenticate", 'Bearer realm="interlock"'))
    body = decision.body.encode()
    # A response to HEAD has no body, whatever its length says.
    return _response(decision.status, headers, body) + (b"" if head else body)


@functools.lru_cache(maxsize=4096)
def _allowed(headers: tuple[tuple[str, str], ...]) -> bytes:
    # One answer per identity, built once: the same few callers ask all the time.
    return _response(200, headers, b"")


def _response(
    status: int, headers: list[tuple[str, str]] | tuple[tuple[str, str], ...], body: bytes
) -> bytes:
    lines = [f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}", f"content-length: {len(body)}"]
    for name, value in headers:
        if SAFE_HEADER_VALUE.fullmatch(value) is None:
            raise ValueError(f"header {name} has a value that cannot be sent as is")
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


class AuthzServer(Lifecycle):
    """The authorizer's listener as a resource: opened after credentials load, closed first.

    Args:
        authorizer: What decides, e.g. ``Authorizer(credentials.remembered,
            credentials.validate, credentials.identity_token)``.
        settings: ``authz_host`` and ``authz_port`` (0 picks a free port, see
            :attr:`port`); the port is shared when ``authorizer_processes`` > 1.
    """

    name = "authz"

    def __init__(self, authorizer: Authorizer, settings: IamSettings) -> None:
        self._authorizer = authorizer
        self._host = settings.authz_host
        self._requested_port = settings.authz_port
        self._share_port = settings.authorizer_processes > 1
        self._server: asyncio.Server | None = None
        self._connections: set[_CheckProtocol] = set()
        self.port: int | None = None
        """The bound port while open."""

    async def start(self) -> None:
        """Open it (see the class docstring)."""
        loop = asyncio.get_running_loop()
        # SO_REUSEPORT only for IAM's own authorizer processes: otherwise a second IAM
        # started on the same port must fail, not share it.
        self._server = await loop.create_server(
            lambda: _CheckProtocol(self._authorizer, self._connections),
            self._host,
            self._requested_port,
            reuse_port=self._share_port,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        logger.info("authorizer listening", extra={"address": self._host, "port": self.port})

    async def stop(self) -> None:
        """Close it; safe to call more than once."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
            # Envoy keeps its connections open: close them, or waiting would never end.
            for connection in list(self._connections):
                connection.close()
            await server.wait_closed()

    async def check(self) -> None:
        """Raise unless the listener is open."""
        if self._server is None or not self._server.is_serving():
            raise RuntimeError("authorizer listener is not serving")
