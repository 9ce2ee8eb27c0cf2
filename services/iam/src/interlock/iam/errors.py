"""IAM's errors, each mapped to an RFC 9457 problem (REST) and a gRPC status.

::

    IamError
    ├── Unauthenticated   401  UNAUTHENTICATED   bad, expired or revoked credentials
    ├── LockedOut         429  RESOURCE_EXHAUSTED too many failed logins
    ├── Forbidden         403  PERMISSION_DENIED
    │   ├── PasswordChangeRequired  403  the password is right but must be changed first
    │   └── UserDisabled            403  the password is right but the user is disabled
    ├── NotFound          404  NOT_FOUND          also another tenant's resource
    ├── Conflict          409  ALREADY_EXISTS
    ├── TooLarge          413  INVALID_ARGUMENT   a value above its size limit
    └── Unavailable       503  UNAVAILABLE        a feature not configured (no key)
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


class PasswordChangeRequired(Forbidden):
    """The password was right but must be changed before the user gets a session.

    A bootstrap admin's first login, or after an admin's reset: ``POST
    /api/v1/auth/password`` changes it.
    """

    title = "Password change required"
    slug = "password-change-required"

    def __init__(self) -> None:
        super().__init__(
            "This password must be changed before logging in: POST /api/v1/auth/password "
            "with the current and a new password."
        )


class UserDisabled(Forbidden):
    """The password was right, but an admin disabled the user."""

    title = "User disabled"
    slug = "user-disabled"

    def __init__(self) -> None:
        super().__init__("This user is disabled; ask an admin of the tenant.")


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


class TooLarge(IamError):
    """A value is larger than its limit (the message names the limit)."""

    status = 413
    title = "Content too large"
    slug = "too-large"


class Unavailable(IamError):
    """A feature this IAM is not configured for (e.g. secrets without a key)."""

    status = 503
    title = "Service unavailable"
    slug = "unavailable"
    grpc_code = grpc.StatusCode.UNAVAILABLE
