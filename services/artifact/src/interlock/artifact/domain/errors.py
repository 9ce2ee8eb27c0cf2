"""The artifact domain's errors; :mod:`interlock.artifact.errors` draws their tree."""

from __future__ import annotations

from interlock.common.errors import InterlockError


class ArtifactError(InterlockError):
    """Base of the artifact service's errors (a 400 unless a subclass says otherwise)."""

    status = 400
    title = "Bad request"
    problem_type = "bad-request"


class InvalidArtifactError(ArtifactError):
    """A name, id, field or form that breaks the rules (the message says which)."""

    status = 422
    title = "Invalid artifact request"
    problem_type = "invalid-artifact"


class ChecksumMismatchError(ArtifactError):
    """The bytes stored do not have the SHA-256 (or the size) the client declared."""

    status = 422
    title = "Checksum mismatch"
    problem_type = "checksum-mismatch"


class ArtifactTooLargeError(ArtifactError):
    """The artifact is larger than the per-artifact limit."""

    status = 413
    title = "Artifact too large"
    problem_type = "artifact-too-large"


class QuotaExceededError(ArtifactError):
    """Storing the artifact would take the tenant beyond its quota."""

    status = 413
    title = "Quota exceeded"
    problem_type = "quota-exceeded"


class ArtifactNotFoundError(ArtifactError):
    """No such artifact in the caller's tenant (also another tenant's, or an expired one)."""

    status = 404
    title = "Artifact not found"
    problem_type = "artifact-not-found"


class RunNotFoundError(ArtifactError):
    """The run an upload names does not exist in the caller's tenant."""

    status = 404
    title = "Run not found"
    problem_type = "run-not-found"


class ArtifactStateError(ArtifactError):
    """The artifact's state does not allow this (reading a pending one, completing twice)."""

    status = 409
    title = "Artifact not in the right state"
    problem_type = "artifact-state"


class RangeNotSatisfiableError(ArtifactError):
    """A ``Range`` that starts beyond the artifact's end."""

    status = 416
    title = "Range not satisfiable"
    problem_type = "range-not-satisfiable"


class DependencyUnavailableError(ArtifactError):
    """The object store or the scheduler did not answer; the request may be retried."""

    status = 503
    title = "Service unavailable"
    problem_type = "unavailable"
