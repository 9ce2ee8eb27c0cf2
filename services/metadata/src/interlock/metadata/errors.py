"""The metadata service's errors, rooted in :class:`interlock.common.errors.InterlockError`.

The store and the service raise them; the REST adapter answers each with the RFC 9457
problem its class declares (``interlock.common.problems``)::

    InterlockError
     ├── InvalidPageTokenError          400  invalid-page-token    a page token this search
     │                                                            did not issue
     └── MetadataError                  400  bad-request
          ├── InvalidSearchError        422  invalid-search        a filter that cannot hold
          │                                                        (a label not key=value,
          │                                                        too many words in q)
          └── ExecutionNotFoundError    404  execution-not-found   also another tenant's run
"""

from __future__ import annotations

from interlock.common.errors import InterlockError, InvalidPageTokenError

__all__ = [
    "ExecutionNotFoundError",
    "InvalidPageTokenError",
    "InvalidSearchError",
    "MetadataError",
]


class MetadataError(InterlockError):
    """Base of the metadata service's errors (a 400 unless a subclass says otherwise)."""

    status = 400
    title = "Bad request"
    problem_type = "bad-request"


class InvalidSearchError(MetadataError):
    """A search filter that cannot hold."""

    status = 422
    title = "Invalid search"
    problem_type = "invalid-search"


class ExecutionNotFoundError(MetadataError):
    """No execution of this id in the caller's tenant."""

    status = 404
    title = "Execution not found"
    problem_type = "execution-not-found"
