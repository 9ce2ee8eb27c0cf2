"""Access tokens: short-lived JWTs signed with EdDSA, carrying ``kid``.

Claims: ``iss`` and ``aud`` (the issuer setting), ``sub`` (user id), ``tid`` (tenant),
``roles``, ``sid`` (login session), ``jti``, ``iat``, ``exp``. Only ``EdDSA`` is
accepted when decoding, so ``alg: none`` and algorithm-confusion tokens fail.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import jwt

from interlock.common.identity import IDENTITY_TOKEN_TYPE, identity_claims
from interlock.iam.domain._keys import ALGORITHM, Keyring, SigningKey
from interlock.iam.domain._principal import AuthPrincipal, PrincipalKind

_REQUIRED_CLAIMS = ["iss", "aud", "sub", "exp", "iat", "jti"]


class TokenError(Exception):
    """A token was refused; the message says why (safe to log, never the token)."""


class UnknownKeyError(TokenError):
    """The token names a key this keyring does not hold (or no longer verifies with).

    Unlike other refusals this one may change: another replica may just have
    rotated in a key this process has not loaded yet.
    """


@dataclass(frozen=True, kw_only=True)
class AccessTokenClaims:
    """What an access token says about its holder."""

    subject: str
    tenant: str
    roles: tuple[str, ...]
    session_id: str


def issue_access_token(
    key: SigningKey, claims: AccessTokenClaims, *, issuer: str, now: float, ttl_s: float
) -> tuple[str, float]:
    """Sign an access token with ``key``.

    Returns:
        The token and its expiry (Unix time).
    """
    expires_at = int(now + ttl_s)
    payload: dict[str, Any] = {
        "iss": issuer,
        "aud": issuer,
        "sub": claims.subject,
        "tid": claims.tenant,
        "roles": list(claims.roles),
        "sid": claims.session_id,
        "jti": secrets.token_hex(12),
        "iat": int(now),
        "exp": expires_at,
    }
    token = jwt.encode(payload, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid})
    return token, float(expires_at)


def issue_identity_token(
    key: SigningKey, principal: AuthPrincipal, *, issuer: str, now: float, ttl_s: float
) -> str:
    """Sign the identity token the gateway forwards to a service for ``principal``.

    Its ``typ`` and ``aud`` differ from an access token's, so neither passes for the
    other (:mod:`interlock.common.identity` verifies it).
    """
    claims = identity_claims(
        subject=principal.subject,
        tenant=principal.tenant,
        roles=principal.roles,
        issuer=issuer,
        now=now,
        ttl_s=ttl_s,
    )
    return jwt.encode(
        claims,
        key.private_key,
        algorithm=ALGORITHM,
        headers={"kid": key.kid, "typ": IDENTITY_TOKEN_TYPE},
    )


def decode_access_token(keyring: Keyring, token: str, *, issuer: str, now: float) -> AuthPrincipal:
    """Verify an access token and return who it names.

    Args:
        keyring: The keys that may have signed it.
        token: The compact JWS.
        issuer: Expected ``iss`` and ``aud``.
        now: Current Unix time (decides whether a retired key still verifies).

    Raises:
        TokenError: Malformed, unknown ``kid``, bad signature, wrong algorithm, issuer or
            audience, expired, or missing claims.
    """
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise TokenError(f"malformed token: {exc}") from None
    kid = header.get("kid")
    if header.get("alg") != ALGORITHM or not isinstance(kid, str):
        raise TokenError("token is not signed with EdDSA under a kid")
    if header.get("typ") == IDENTITY_TOKEN_TYPE:
        raise TokenError("an identity token is no access token")
    key = keyring.verifier(kid, now)
    if key is None:
        raise UnknownKeyError("token signed by an unknown or expired key")
    try:
        payload = jwt.decode(
            token,
            key.public_key,
            algorithms=[ALGORITHM],
            audience=issuer,
            issuer=issuer,
            options={"require": _REQUIRED_CLAIMS},
        )
    except jwt.PyJWTError as exc:
        raise TokenError(f"invalid token: {exc}") from None
    tenant, roles, session = payload.get("tid"), payload.get("roles"), payload.get("sid")
    if (
        not isinstance(tenant, str)
        or not isinstance(session, str)
        or not isinstance(roles, list)
        or not all(isinstance(role, str) for role in roles)
    ):
        raise TokenError("token lacks tenant, roles or session")
    return AuthPrincipal(
        subject=str(payload["sub"]),
        kind=PrincipalKind.USER,
        tenant=tenant,
        roles=tuple(roles),
        expires_at=float(payload["exp"]),
        session_id=session,
    )
