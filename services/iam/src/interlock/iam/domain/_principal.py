"""Who a validated token or API key names."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class PrincipalKind(StrEnum):
    """What kind of credential authenticated the caller."""

    USER = "user"
    API_KEY = "api_key"


@dataclass(frozen=True, kw_only=True)
class AuthPrincipal:
    """An authenticated caller."""

    subject: str
    """User id or API key id."""
    kind: PrincipalKind
    tenant: str
    roles: tuple[str, ...]
    expires_at: float | None
    """When the credential stops being valid (Unix time), or ``None`` (an API key without
    expiry)."""
    session_id: str | None = None
    """The login session (refresh-token family) an access token belongs to. Default: none."""

    @property
    def roles_header(self) -> str:
        """Roles as the gateway forwards them: comma-separated."""
        return ",".join(self.roles)
