"""IAM's errors, rooted in :class:`interlock.common.errors.InterlockError`.

The store, the credentials and the accounts raise them; the REST adapter answers each
with its RFC 9457 problem (``interlock.common.problems``), the gRPC adapter and the
authorizer with the gRPC status or the denial it declares. Nothing here imports gRPC::

    InterlockError
     └── IamError                400  bad-request       INVALID_ARGUMENT   e.g. an unknown role
          ├── Unauthenticated    401  unauthenticated   UNAUTHENTICATED    bad, expired or
          │                                                                revoked credentials
          ├── Forbidden          403  forbidden         PERMISSION_DENIED  a role too low
          │    ├── PasswordChangeRequired  403  password-change-required  the password
          │    │                                       is right but must be changed first
          │    ├── UserDisabled            403  user-disabled  the password is right but
          │    │                                               an admin disabled the user
          │    └── CsrfRefused             403  csrf-refused   a cookie-authenticated
          │                                                    change without its CSRF token
          ├── NotFound           404  not-found         NOT_FOUND          also another
          │                                                                tenant's resource
          ├── Conflict           409  conflict          ALREADY_EXISTS     the name is taken
          ├── TooLarge           413  too-large         INVALID_ARGUMENT   a value above its
          │                                                                size limit
          ├── LockedOut          429  locked-out        RESOURCE_EXHAUSTED too many failed
          │                                                                logins
          └── Busy               503  busy              UNAVAILABLE        too many lookups
                                                                           at once; retry shortly
"""

from __future__ import annotations

from typing import Any

from interlock.common.errors import InterlockError


class IamError(InterlockError):
    """Base of IAM's domain errors; the message is safe to show to the caller."""

    status = 400
    title = "Bad request"
    problem_type = "bad-request"


class Unauthenticated(IamError):
    """Missing, malformed, expired or revoked credentials."""

    status = 401
    title = "Unauthenticated"
    problem_type = "unauthenticated"


class LockedOut(IamError):
    """Too many failed logins in a row: try again after ``retry_after_s``."""

    status = 429
    title = "Too many failed logins"
    problem_type = "locked-out"

    def __init__(self, retry_after_s: float) -> None:
        super().__init__("Too many failed logins; try again later.")
        self.retry_after_s = retry_after_s

    @property
    def retry_after_whole_s(self) -> int:
        """``retry_after_s`` rounded up to whole seconds, as ``Retry-After`` says it."""
        return int(self.retry_after_s) + 1

    def problem_extensions(self) -> dict[str, Any]:
        """``retry_after_s``, in whole seconds."""
        return {"retry_after_s": self.retry_after_whole_s}


class Forbidden(IamError):
    """Authenticated, but not allowed."""

    status = 403
    title = "Forbidden"
    problem_type = "forbidden"


class PasswordChangeRequired(Forbidden):
    """The password was right but must be changed before the user gets a session.

    A bootstrap admin's first login, or after an admin's reset: ``POST
    /api/v1/auth/password`` changes it.
    """

    title = "Password change required"
    problem_type = "password-change-required"

    def __init__(self) -> None:
        super().__init__(
            "This password must be changed before logging in: POST /api/v1/auth/password "
            "with the current and a new password."
        )


class UserDisabled(Forbidden):
    """The password was right, but an admin disabled the user."""

    title = "User disabled"
    problem_type = "user-disabled"

    def __init__(self) -> None:
        super().__init__("This user is disabled; ask an admin of the tenant.")


class CsrfRefused(Forbidden):
    """A state-changing request authenticated by the session cookie lacked its CSRF token."""

    title = "CSRF token missing or wrong"
    problem_type = "csrf-refused"

    def __init__(self) -> None:
        super().__init__(
            "A request signed in by the session cookie must send the session's CSRF token"
            " (the interlock_csrf cookie) in the x-interlock-csrf header."
        )


class NotFound(IamError):
    """No such resource in the caller's tenant."""

    status = 404
    title = "Not found"
    problem_type = "not-found"


class Conflict(IamError):
    """The resource already exists."""

    status = 409
    title = "Conflict"
    problem_type = "conflict"
    grpc_code = "ALREADY_EXISTS"


class TooLarge(IamError):
    """A value is larger than its limit (the message names the limit)."""

    status = 413
    title = "Content too large"
    problem_type = "too-large"
    grpc_code = "INVALID_ARGUMENT"


class Busy(IamError):
    """Too many credential lookups at once (e.g. a flood of made-up API keys)."""

    status = 503
    title = "Service unavailable"
    problem_type = "busy"
