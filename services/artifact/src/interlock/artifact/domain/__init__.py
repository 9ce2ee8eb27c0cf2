"""The artifact service's decisions, free of I/O: names, keys, ranges, limits, errors."""

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
from interlock.artifact.domain.limits import DEFAULT_LINK_S, MAX_LINK_S, Limits, link_lifetime_s
from interlock.artifact.domain.names import (
    MAX_NAME_BYTES,
    RUN_LEVEL_TASK,
    check_name,
    check_run_id,
    check_task_id,
    content_disposition,
    object_key,
    run_prefix,
)
from interlock.artifact.domain.ranges import ByteRange, parse_range

__all__ = [
    "DEFAULT_LINK_S",
    "MAX_LINK_S",
    "MAX_NAME_BYTES",
    "RUN_LEVEL_TASK",
    "ArtifactError",
    "ArtifactNotFoundError",
    "ArtifactStateError",
    "ArtifactTooLargeError",
    "ByteRange",
    "ChecksumMismatchError",
    "DependencyUnavailableError",
    "InvalidArtifactError",
    "Limits",
    "QuotaExceededError",
    "RangeNotSatisfiableError",
    "RunNotFoundError",
    "check_name",
    "check_run_id",
    "check_task_id",
    "content_disposition",
    "link_lifetime_s",
    "object_key",
    "parse_range",
    "run_prefix",
]
