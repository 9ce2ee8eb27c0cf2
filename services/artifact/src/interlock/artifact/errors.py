"""The artifact service's errors, rooted in :class:`interlock.common.errors.InterlockError`.

The domain, the store and the object store raise them; the REST adapter answers each
with the RFC 9457 problem its class declares (``interlock.common.problems``)::

    InterlockError
     ├── InvalidPageTokenError          400  invalid-page-token     a page token this list
     │                                                              did not issue
     └── ArtifactError                  400  bad-request
          ├── InvalidArtifactError      422  invalid-artifact       an unsafe name, a bad id,
          │                                                         field, form or lifetime
          ├── ChecksumMismatchError     422  checksum-mismatch      the bytes do not have the
          │                                                         declared SHA-256 or size;
          │                                                         nothing is kept
          ├── ArtifactTooLargeError     413  artifact-too-large     beyond the per-artifact
          │                                                         limit
          ├── QuotaExceededError        413  quota-exceeded         beyond the tenant's quota
          ├── ArtifactNotFoundError     404  artifact-not-found     also another tenant's, or
          │                                                         an expired one
          ├── RunNotFoundError          404  run-not-found          an upload for a run the
          │                                                         tenant does not have
          ├── ArtifactStateError        409  artifact-state         reading a pending artifact,
          │                                                         completing an available one
          ├── RangeNotSatisfiableError  416  range-not-satisfiable  a Range beyond the end
          └── DependencyUnavailableError 503 unavailable            S3 or the scheduler did
                                                                    not answer
"""

from __future__ import annotations

from interlock.artifact.domain.errors import (
    ArtifactError,
    ArtifactNotFoundError,
    ArtifactStateError,
    ArtifactTooLargeError,
    ChecksumMismatchError,
    DependencyUnavailableError,
    InvalidArtifactError,
    QuotaExceededError,
    RangeNotSatisfiableError,
    RunNotFoundError,
)
from interlock.common.errors import InvalidPageTokenError

__all__ = [
    "ArtifactError",
    "ArtifactNotFoundError",
    "ArtifactStateError",
    "ArtifactTooLargeError",
    "ChecksumMismatchError",
    "DependencyUnavailableError",
    "InvalidArtifactError",
    "InvalidPageTokenError",
    "QuotaExceededError",
    "RangeNotSatisfiableError",
    "RunNotFoundError",
]
