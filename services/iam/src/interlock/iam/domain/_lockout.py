"""Login throttling: each password check is an attempt reserved in advance.

The state is kept per name tried (tenant and username), whether or not such a user
exists, so an unknown name is answered exactly like a known one: the same statuses
in the same order, and a password check (against a decoy hash) whenever the name is
not locked out.

An attempt is counted *before* its password is checked (and forgotten again when it
succeeds), so parallel guesses cannot all slip in under the limit while the slow
hash runs: the ``max_failures``-th reservation locks the name at once.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True, kw_only=True)
class LoginAttempts:
    """What is remembered about the logins tried under one name."""

    failures: int = 0
    """Attempts since the last lockout or success, the ones in flight included."""
    lockouts: int = 0
    """Lockouts in a row (no success in between): each one lasts twice the last."""
    locked_until: float | None = None
    """End of the current or last lockout (Unix time)."""


@dataclass(frozen=True, kw_only=True)
class LockoutPolicy:
    """Locks a name out for a while after ``max_failures`` failed logins in a row.

    After a lockout ends the name has ``max_failures`` tries again (one wrong guess
    does not lock it again), and the next lockout lasts twice as long, never longer
    than ``max_lockout_s``: whoever keeps guessing can delay the owner by at most that
    much at a time, and an admin can end a lockout at once.
    """

    max_failures: int = 5
    """Failures in a row before a lockout. Default: 5."""
    lockout_s: float = 60.0
    """First lockout. Default: 60 s."""
    max_lockout_s: float = 900.0
    """Longest lockout. Default: 15 minutes."""

    def reserve(self, attempts: LoginAttempts, now: float) -> LoginAttempts | None:
        """Count one more attempt, or ``None`` when the name is locked out.

        Args:
            attempts: The name's state (a new name: ``LoginAttempts()``).
            now: Current Unix time.

        Returns:
            The state with this attempt counted (locked from now on if it is the last
            one allowed), or ``None``: refuse without checking the password.
        """
        if self.retry_after_s(attempts.locked_until, now) is not None:
            return None
        failures = attempts.failures + 1
        if failures < self.max_failures:
            return replace(attempts, failures=failures)
        doublings = min(attempts.lockouts, 32)
        lockout_s = min(self.lockout_s * (1 << doublings), self.max_lockout_s)
        return LoginAttempts(
            failures=0, lockouts=attempts.lockouts + 1, locked_until=now + lockout_s
        )

    @staticmethod
    def retry_after_s(locked_until: float | None, now: float) -> float | None:
        """Seconds until a lockout ends, or ``None`` when not locked out."""
        if locked_until is None or locked_until <= now:
            return None
        return locked_until - now
