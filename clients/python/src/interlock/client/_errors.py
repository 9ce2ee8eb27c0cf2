"""Every error the client raises.

The tree::

    InterlockClientError            base of every error of this package
     ├── ConnectionFailed           the gateway could not be reached (after the retries)
     ├── StreamError                a log stream broke off and did not come back
     └── ApiError                   the API answered a problem document (RFC 9457)
          ├── BadRequest            400  malformed request, body, parameter or page token
          ├── Unauthenticated       401  no, bad, expired or revoked credentials
          │    └── SessionEnded     401  the refresh token was refused: log in again
          ├── Forbidden             403  the caller's roles do not allow this
          ├── NotFound              404  no such resource in the caller's tenant
          ├── Conflict              409  the resource's state does not allow this
          ├── PayloadTooLarge       413  a body or quota over its limit
          ├── UnsupportedMediaType  415
          ├── ValidationFailed      422  well-formed but invalid (see ``errors``)
          ├── RateLimited           429  try again after ``retry_after_s``
          └── ServerError           5xx  the platform failed (quote ``request_id``)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx

__all__ = [
    "ApiError",
    "BadRequest",
    "Conflict",
    "ConnectionFailed",
    "FieldProblem",
    "Forbidden",
    "InterlockClientError",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "ServerError",
    "SessionEnded",
    "StreamError",
    "Unauthenticated",
    "UnsupportedMediaType",
    "ValidationFailed",
    "error_from_response",
]


class InterlockClientError(Exception):
    """Base of every error this package raises."""


class ConnectionFailed(InterlockClientError):
    """The gateway could not be reached, or the connection broke, after the retries."""


class StreamError(InterlockClientError):
    """A server-sent event stream broke off and reconnecting did not bring it back."""


@dataclass(frozen=True)
class FieldProblem:
    """One problem of a request's part, from a problem document's ``errors`` member."""

    pointer: str
    """JSON Pointer into the request, e.g. ``/body/tasks/0/id`` or ``/query/page_size``."""
    detail: str


class ApiError(InterlockClientError):
    """The API answered an ``application/problem+json`` error (RFC 9457).

    Attributes:
        status: The HTTP status code.
        type: The problem type URI, e.g. ``urn:interlock:problem:not-found``.
        title: Short summary of the problem type.
        detail: What went wrong this time, or ``None``.
        request_id: The request's id in the platform's logs, or ``None``.
        errors: Per-field problems (validation errors); empty when there are none.
        body: The whole problem document, extension members included.
    """

    status_code: ClassVar[int | None] = None

    def __init__(
        self,
        *,
        status: int,
        type: str,
        title: str,
        detail: str | None = None,
        request_id: str | None = None,
        errors: list[FieldProblem] | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        self.status = status
        self.type = type
        self.title = title
        self.detail = detail
        self.request_id = request_id
        self.errors = errors or []
        self.body = body or {}
        super().__init__(self.summary())

    def summary(self) -> str:
        """One line: title, detail and each field problem, e.g. for a terminal."""
        text = self.title
        if self.detail and self.detail != self.title:
            text += f": {self.detail}"
        if self.errors:
            text += " (" + "; ".join(f"{e.pointer}: {e.detail}" for e in self.errors) + ")"
        return " ".join(text.split())


class BadRequest(ApiError):
    """400: a malformed request, body or parameter, or a page token this list did not issue."""

    status_code = 400


class Unauthenticated(ApiError):
    """401: no credentials, or bad, expired or revoked ones."""

    status_code = 401


class SessionEnded(Unauthenticated):
    """401 on refresh: the session ended (logout, reuse of a refresh token, disabled user)."""


class Forbidden(ApiError):
    """403: the caller's roles do not allow this operation."""

    status_code = 403


class NotFound(ApiError):
    """404: no such resource in the caller's tenant."""

    status_code = 404


class Conflict(ApiError):
    """409: the resource's state does not allow this, or it exists already."""

    status_code = 409


class PayloadTooLarge(ApiError):
    """413: a body, file or quota over its limit."""

    status_code = 413


class UnsupportedMediaType(ApiError):
    """415: the route does not read the body's media type."""

    status_code = 415


class ValidationFailed(ApiError):
    """422: well-formed but invalid; :attr:`errors` says where."""

    status_code = 422


class RateLimited(ApiError):
    """429: too many requests.

    Attributes:
        retry_after_s: Seconds to wait, from ``Retry-After``, or ``None``.
    """

    status_code = 429
    retry_after_s: float | None = None


class ServerError(ApiError):
    """5xx: the platform failed; quote :attr:`request_id` when reporting it."""


_BY_STATUS: dict[int, type[ApiError]] = {
    cls.status_code: cls
    for cls in (
        BadRequest,
        Unauthenticated,
        Forbidden,
        NotFound,
        Conflict,
        PayloadTooLarge,
        UnsupportedMediaType,
        ValidationFailed,
        RateLimited,
    )
    if cls.status_code is not None
}


def error_from_response(response: httpx.Response) -> ApiError:
    """The typed error for an error ``response`` whose body has been read.

    A body that is no problem document (e.g. a proxy's HTML page) still gives an
    error with the status's reason as its title.
    """
    body = _problem_body(response)
    status = response.status_code
    cls = _BY_STATUS.get(status, ServerError if status >= 500 else ApiError)
    raw_errors = body.get("errors")
    errors = [
        FieldProblem(str(item.get("pointer", "")), str(item.get("detail", "")))
        for item in (raw_errors if isinstance(raw_errors, list) else [])
        if isinstance(item, dict)
    ]
    request_id = body.get("request_id") or response.headers.get("x-request-id")
    error = cls(
        status=status,
        type=str(body.get("type") or "about:blank"),
        title=str(body.get("title") or response.reason_phrase or f"HTTP {status}"),
        detail=None if body.get("detail") is None else str(body["detail"]),
        request_id=None if request_id is None else str(request_id),
        errors=errors,
        body=body,
    )
    if isinstance(error, RateLimited):
        error.retry_after_s = _retry_after_s(response)
    return error


def _problem_body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = json.loads(response.content)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _retry_after_s(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    try:
        return float(value)
    except ValueError:
        return None
