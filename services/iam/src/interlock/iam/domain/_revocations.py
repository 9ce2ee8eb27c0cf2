"""Revoked sessions and API keys, as the authorizer consults them on every request."""

from __future__ import annotations

from enum import StrEnum

from interlock.iam.domain._principal import AuthPrincipal, PrincipalKind


class RevocationKind(StrEnum):
    """What a revocation names."""

    SESSION = "session"
    """A login session: its refresh-token family and every access token issued from it."""
    API_KEY = "api_key"


class RevocationList:
    """Revoked session and API key ids, each kept until nothing it names can be valid."""

    def __init__(self) -> None:
        self._revoked: dict[tuple[RevocationKind, str], float | None] = {}

    def __len__(self) -> int:
        return len(self._revoked)

    def add(self, kind: RevocationKind, ref: str, expires_at: float | None) -> None:
        """Revoke ``ref`` until ``expires_at`` (Unix time; ``None``: for good)."""
        self._revoked[(kind, ref)] = expires_at

    def is_revoked(self, principal: AuthPrincipal) -> bool:
        """Whether the credential ``principal`` came from has been revoked."""
        if principal.kind is PrincipalKind.API_KEY:
            return (RevocationKind.API_KEY, principal.subject) in self._revoked
        return (
            principal.session_id is not None
            and (RevocationKind.SESSION, principal.session_id) in self._revoked
        )

    def prune(self, now: float) -> None:
        """Forget revocations whose credentials have all expired by ``now``."""
        for key, expires_at in list(self._revoked.items()):
            if expires_at is not None and expires_at <= now:
                del self._revoked[key]
