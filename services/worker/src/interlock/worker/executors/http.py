"""The ``http`` executor: one HTTP request, its response as the output."""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field

from interlock.common import addresses
from interlock.common.durations import parse_duration_ms
from interlock.worker.context import TaskContext
from interlock.worker.domain.redaction import loggable_url
from interlock.worker.errors import InvalidParams, TaskFailure
from interlock.worker.executors import parse_params
from interlock.worker.settings import WorkerSettings

__all__ = ["AddressNotAllowed", "HttpExecutor"]

_RETRYABLE_STATUSES = frozenset({408, 425, 429})
_MESSAGE_BODY_CHARS = 200


class AddressNotAllowed(TaskFailure):
    """The URL's host resolves to an address the worker may not reach."""

    default_retryable = False


class _HttpParams(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    method: str = "GET"
    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | None = None
    json_body: Any = Field(default=None, alias="json")
    timeout: float | str | None = None
    timeout_ms: float | None = Field(default=None, gt=0)
    accepted_statuses: list[int] | None = None
    max_response_bytes: int | None = Field(default=None, ge=0)


class HttpExecutor:
    """Sends one request and returns the response.

    Params: ``method`` (default ``GET``), ``url`` (http or https), ``headers``,
    ``body`` (text) or ``json`` (a JSON value), ``timeout`` (``"5s"``) or
    ``timeout_ms`` (default: setting ``http_default_timeout_ms``),
    ``accepted_statuses`` (default: any 2xx), ``max_response_bytes`` (at most, and by
    default, setting ``http_max_response_bytes``).

    Output: ``{"status", "headers", "body", "body_truncated"}``; the body is text
    (undecodable bytes replaced).

    Log: one line per request, e.g. ``GET https://api.example.com/items?token=[redacted]
    200 in 35 ms`` (no user or password, credential-like query values hidden).

    Address guard (:mod:`interlock.common.addresses`): the host is resolved first and
    every address must be globally routable, or inside setting
    ``http_allowed_networks``; the request then goes to the vetted
    address (TLS still verifies the host name), so a DNS answer cannot change between
    check and use. Redirects are not followed (a 3xx is the output, or a failure when
    not accepted).

    Failures: a non-accepted status fails, retryable for 5xx, 408, 425 and 429;
    connection errors and timeouts are retryable; bad params and denied addresses
    are not.
    """

    def __init__(self, settings: WorkerSettings) -> None:
        self._allowed = addresses.parse_networks(settings.http_allowed_networks)
        self._max_bytes = settings.http_max_response_bytes
        self._default_timeout_ms = settings.http_default_timeout_ms
        self._client: httpx.AsyncClient | None = None

    async def aclose(self) -> None:
        """Close the connection pool."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def execute(self, params: Any, context: TaskContext) -> Any:
        """Send the request and return the response."""
        parsed = parse_params(_HttpParams, params)
        url = _parse_url(parsed.url)
        timeout_s = self._timeout_ms(parsed) / 1000
        limit = min(
            self._max_bytes,
            parsed.max_response_bytes if parsed.max_response_bytes is not None else self._max_bytes,
        )
        address = await self._vetted_address(url, timeout_s)
        headers = dict(parsed.headers)
        if not any(name.lower() == "host" for name in headers):
            headers["Host"] = url.netloc.decode("ascii")
        body: dict[str, Any] = {}
        if parsed.body is not None:
            body["content"] = parsed.body
        elif "json_body" in parsed.model_fields_set:
            body["json"] = parsed.json_body
        request = self._http().build_request(
            parsed.method.upper(),
            url.copy_with(host=str(address)),
            headers=headers,
            timeout=timeout_s,
            extensions={"sni_hostname": url.host},
            **body,
        )
        summary = f"{parsed.method.upper()} {loggable_url(parsed.url)}"
        started = time.monotonic()
        try:
            response = await self._http().send(request, stream=True)
        except httpx.TimeoutException as error:
            context.logger.captured(logging.WARNING, f"{summary} timed out{_took(started)}")
            raise TimeoutError(f"{parsed.method.upper()} {parsed.url} timed out") from error
        except httpx.HTTPError as error:
            context.logger.captured(
                logging.WARNING, f"{summary} failed: {type(error).__name__}{_took(started)}"
            )
            raise
        try:
            content, truncated = await _read_limited(response, limit)
        finally:
            await response.aclose()
        context.logger.captured(
            logging.INFO if response.is_success else logging.WARNING,
            f"{summary} {response.status_code}{_took(started)}",
        )
        text = content.decode(response.encoding or "utf-8", errors="replace")
        accepted = parsed.accepted_statuses
        if (response.status_code not in accepted) if accepted else not response.is_success:
            raise TaskFailure(
                f"{parsed.method.upper()} {parsed.url} answered {response.status_code}: "
                f"{text[:_MESSAGE_BODY_CHARS]}",
                retryable=response.status_code >= 500
                or response.status_code in _RETRYABLE_STATUSES,
                type_="HTTPStatusError",
            )
        return {
            "status": response.status_code,
            "headers": {
                name: ", ".join(response.headers.get_list(name)) for name in response.headers
            },
            "body": text,
            "body_truncated": truncated,
        }

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(follow_redirects=False, trust_env=False)
        return self._client

    def _timeout_ms(self, parsed: _HttpParams) -> float:
        if parsed.timeout_ms is not None:
            return parsed.timeout_ms
        if parsed.timeout is not None:
            try:
                return parse_duration_ms(parsed.timeout)
            except ValueError as error:
                raise InvalidParams(f"timeout: {error}") from None
        return self._default_timeout_ms

    async def _vetted_address(self, url: httpx.URL, timeout_s: float) -> addresses.IPAddress:
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            return await addresses.resolve_reachable(
                url.host, port, allowed=self._allowed, timeout_s=timeout_s
            )
        except addresses.HostNotResolved as error:
            raise TaskFailure(str(error), type_="DNSError") from None
        except addresses.AddressNotAllowed as error:
            raise AddressNotAllowed(str(error)) from None


def _took(started: float) -> str:
    return f" in {(time.monotonic() - started) * 1000:.0f} ms"


def _parse_url(raw: str) -> httpx.URL:
    try:
        url = httpx.URL(raw)
    except httpx.InvalidURL as error:
        raise InvalidParams(f"url: {error}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise InvalidParams("url: must be an absolute http or https URL")
    return url


async def _read_limited(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        if size + len(chunk) > limit:
            chunks.append(chunk[: limit - size])
            return b"".join(chunks), True
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks), False
