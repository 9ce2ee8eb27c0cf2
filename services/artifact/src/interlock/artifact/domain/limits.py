"""Bounds the service enforces: link lifetimes, retention, sizes and quotas."""

from __future__ import annotations

from dataclasses import dataclass

from interlock.artifact.domain.errors import (
    ArtifactTooLargeError,
    InvalidArtifactError,
    QuotaExceededError,
)
from interlock.common.durations import parse_duration_ms
from interlock.common.errors import InvalidDurationError

__all__ = ["DEFAULT_LINK_S", "MAX_LINK_S", "Limits", "link_lifetime_s"]

DEFAULT_LINK_S = 3600
"""Lifetime of a pre-signed URL when the request gives none: one hour."""
MAX_LINK_S = 7 * 86_400
"""Longest lifetime of a pre-signed URL: seven days (also S3's own bound for SigV4)."""


def link_lifetime_s(expires_in: int | None) -> int:
    """The lifetime of a pre-signed URL, ``expires_in`` seconds or the default (422 beyond)."""
    if expires_in is None:
        return DEFAULT_LINK_S
    if not 1 <= expires_in <= MAX_LINK_S:
        raise InvalidArtifactError(f"expires_in must be 1 to {MAX_LINK_S} seconds")
    return expires_in


@dataclass(frozen=True, kw_only=True)
class Limits:
    """The service's limits (from its settings)."""

    max_artifact_bytes: int
    """Largest artifact."""
    tenant_quota_bytes: int
    """Most bytes one tenant may keep, pending uploads included."""
    default_retention_s: int
    """How long an artifact is kept when its upload gives no ``retention``."""
    max_retention_s: int
    """Longest ``retention`` an upload may ask for."""

    def retention_s(self, retention: str | None) -> int:
        """Seconds to keep an artifact: the ``retention`` duration (e.g. ``7d``) or the default."""
        if retention is None or retention == "":
            return self.default_retention_s
        try:
            seconds = parse_duration_ms(retention) // 1000
        except InvalidDurationError as error:
            raise InvalidArtifactError(f"retention: {error}") from None
        if not 1 <= seconds <= self.max_retention_s:
            raise InvalidArtifactError(f"retention must be 1 s to {self.max_retention_s} s")
        return seconds

    def room(self, tenant_usage_bytes: int) -> int:
        """Most bytes the next artifact may have, given what the tenant keeps already.

        Raises:
            QuotaExceededError: The tenant has no room left.
        """
        left = self.tenant_quota_bytes - tenant_usage_bytes
        if left <= 0:
            raise QuotaExceededError(self._quota_detail(tenant_usage_bytes))
        return min(left, self.max_artifact_bytes)

    def check_size(self, size_bytes: int, tenant_usage_bytes: int) -> None:
        """Refuse an artifact of ``size_bytes`` beyond the limit (413) or the quota (413)."""
        if size_bytes > self.max_artifact_bytes:
            raise ArtifactTooLargeError(self.too_large_detail())
        if tenant_usage_bytes + size_bytes > self.tenant_quota_bytes:
            raise QuotaExceededError(self._quota_detail(tenant_usage_bytes))

    def too_large_detail(self) -> str:
        """The detail of a 413 for an artifact beyond the limit."""
        return f"an artifact may have at most {self.max_artifact_bytes} bytes"

    def _quota_detail(self, usage: int) -> str:
        return f"the tenant keeps {usage} bytes of a quota of {self.tenant_quota_bytes} bytes"
