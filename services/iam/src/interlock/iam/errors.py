"""IAM's errors, each mapped to an RFC 9457 problem (REST) and a gRPC status.

::

    IamError
    ├── Unauthenticated   401  UNAUTHENTICATED   bad, expired or revoked credentials
    ├── LockedOut         429  RESOURCE_EXHAUSTED too many failed logins
    ├── Forbidden         403  PERMISSION_DENIED
    ├── NotFound          404  NOT_FOUND          also another tenant's resource
    ├── Conflict          409  ALREADY_EXISTS
    └── Busy              503  UNAVAILABLE        too many lookups at once; retry shortly
"""

from __future__ import annotations

from typing import ClassVar

import grpc

from interlock.common.problems import Problem


class IamError(Exception):
    """Base of IAM's domain errors; the message is safe to show to the caller."""

    status: ClassVar[int] = 400
    title: ClassVar[str] = "Bad request"
    slug: ClassVar[str] = "bad-request"
    grpc_code: ClassVar[grpc.StatusCode] = grpc.StatusCode.INVALID_ARGUMENT

    def to_problem(self) -> Problem:
        """This error as a problem document."""
        return Problem(self.status, self.title, detail=str(self) or None, type_=self.slug)


class Unauthenticated(IamError):
    """Missing, malformed, expired or revoked credentials."""

    status = 401
    title = "Unauthenticated"
    slug = "unauthenticated"
    grpc_code = grpc.StatusCode.UNAUTHENTICATED


class LockedOut(IamError):
    """Too many failed logins in a row: try again after ``retry_after_s``."""

    status = 429
    title = "Too many failed logins"
    slug = "locked-out"
    grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED

    def __init__(self, retry_after_s: float) -> None:
        super().__init__("Too many failed logins; try again later.")
        self.retry_after_s = retry_after_s

    def to_problem(self) -> Problem:
        """The problem, with ``retry_after_s``."""
        return Problem(
            self.status,
            self.title,
            detail=str(self),
            type_=self.slug,
            extensions={"retry_after_s": int(self.retry_after_s) + 1},
        )


class Forbidden(IamError):
    """Authenticated, but not allowed."""

    status = 403
    title = "Forbidden"
    slug = "forbidden"
    grpc_code = grpc.StatusCode.PERMISSION_DENIED


class NotFound(IamError):
    """No such resource in the caller's tenant."""

    status = 404
    title = "Not found"
    slug = "not-found"
    grpc_code = grpc.StatusCode.NOT_FOUND


class Conflict(IamError):
    """The resource already exists."""

    status = 409
    title = "Conflict"
    slug = "conflict"
    grpc_code = grpc.StatusCode.ALREADY_EXISTS


class Busy(IamError):
    """Too many credential lookups at once (e.g. a flood of made-up API keys)."""

    status = 503
    title = "Service unavailable"
    slug = "busy"
    grpc_code = grpc.StatusCode.UNAVAILABLE
