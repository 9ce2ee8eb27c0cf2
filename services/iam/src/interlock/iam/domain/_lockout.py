"""Login throttling: how long repeated failures lock a user out."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class LockoutPolicy:
    """Locks a user out after ``max_failures`` failed logins in a row.

    The first lockout lasts ``lockout_s``; every further failure at the limit (after the
    lockout ended) doubles it, up to ``max_lockout_s``. A successful login resets the
    count.
    """

    max_failures: int = 5
    """Failures in a row before the first lockout. Default: 5."""
    lockout_s: float = 60.0
    """First lockout. Default: 60 s."""
    max_lockout_s: float = 3600.0
    """Longest lockout. Default: 1 hour."""

    def after_failure(self, failures: int, now: float) -> float | None:
        """When the user may try again after their ``failures``-th failure in a row.

        Args:
            failures: Failures in a row, the one just made included.
            now: Current Unix time.

        Returns:
            The end of the lockout (Unix time), or ``None`` when not locked out.
        """
        if failures < self.max_failures:
            return None
        doublings = min(failures - self.max_failures, 32)
        return now + min(self.lockout_s * (1 << doublings), self.max_lockout_s)

    @staticmethod
    def retry_after_s(locked_until: float | None, now: float) -> float | None:
        """Seconds until a lockout ends, or ``None`` when not locked out."""
        if locked_until is None or locked_until <= now:
            return None
        return locked_until - now
