"""Who is calling: the identity token IAM signed for the request, verified here.

For every request it lets through, the gateway asks IAM, which answers with a
short-lived *identity token*: an EdDSA JWT signed with IAM's signing key, saying who
the caller is (``sub``), their tenant (``tid``) and roles. Envoy removes any
client-sent ``x-interlock-identity`` header first and forwards IAM's. A service trusts
nothing else: it verifies the token's signature against IAM's JWKS, its type, issuer,
audience and expiry, and refuses a request without a valid one (401). So a request
sent straight to a service port, with headers made up by whoever sent it, gets
nowhere. Use :data:`CurrentPrincipal` in a route::

    @router.get("/api/v1/runs")
    async def list_runs(principal: CurrentPrincipal) -> ...:
        ...  # every query filtered by principal.tenant

Internal gRPC calls made on behalf of a caller carry the same token in their metadata
(:data:`IDENTITY_METADATA`); :meth:`IdentityVerifier.verify` checks it there too.

Verification is cached per token until it expires (the gateway reuses one token per
caller for most of its lifetime), so a request costs a dictionary lookup, not a
signature check (~0.1 ms).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Protocol

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import Depends
from jwt.algorithms import OKPAlgorithm
from starlette.requests import HTTPConnection

from interlock.common.problems import Problem
from interlock.common.resources import Lifecycle
from interlock.common.settings import ServiceSettings

__all__ = [
    "IDENTITY_ALGORITHM",
    "IDENTITY_AUDIENCE",
    "IDENTITY_HEADER",
    "IDENTITY_METADATA",
    "IDENTITY_TOKEN_TYPE",
    "CurrentPrincipal",
    "IdentityVerifier",
    "InvalidIdentity",
    "JwksKeys",
    "KeySource",
    "Principal",
    "identity_claims",
    "parse_jwks",
    "require_principal",
]

logger = logging.getLogger(__name__)

IDENTITY_HEADER = "x-interlock-identity"
"""The header carrying the identity token; only the gateway sets it (it removes
client-sent copies before asking IAM)."""
IDENTITY_METADATA = IDENTITY_HEADER
"""The gRPC metadata key carrying the identity token on internal calls."""
IDENTITY_AUDIENCE = "interlock-services"
"""``aud`` of every identity token: unlike an access token's (the issuer's name), so
neither can be used as the other."""
IDENTITY_TOKEN_TYPE = "interlock-identity+jwt"  # noqa: S105 - a JWT type, not a secret
"""``typ`` header of every identity token."""
IDENTITY_ALGORITHM = "EdDSA"
"""The only algorithm accepted: ``none`` and HMAC (key confusion) are refused."""
_LEEWAY_S = 5.0  # clocks of IAM and a service may differ a little
_CACHE_SIZE = 10_000


@dataclass(frozen=True, kw_only=True)
class Principal:
    """An authenticated caller, as IAM vouched for them."""

    subject: str
    """User id or API key id."""
    tenant: str
    """The tenant every resource the caller touches must belong to."""
    roles: frozenset[str]
    """Role names, e.g. ``{"developer"}``."""

    def has_role(self, *roles: str) -> bool:
        """Whether the caller holds any of ``roles``."""
        return not self.roles.isdisjoint(roles)


class InvalidIdentity(Exception):
    """The identity token is missing, malformed, badly signed, of another type or expired."""


def identity_claims(
    *,
    subject: str,
    tenant: str,
    roles: tuple[str, ...] | list[str],
    issuer: str,
    now: float,
    ttl_s: float,
) -> dict[str, Any]:
    """The claims of an identity token (what IAM and the test helper sign)."""
    return {
        "iss": issuer,
        "aud": IDENTITY_AUDIENCE,
        "sub": subject,
        "tid": tenant,
        "roles": list(roles),
        "iat": int(now),
        "exp": int(now + ttl_s),
    }


class KeySource(Protocol):
    """Where a verifier finds the public key of a ``kid``."""

    async def public_key(self, kid: str) -> Ed25519PublicKey | None:
        """The key ``kid`` names, or ``None`` when it is unknown."""
        ...


def parse_jwks(document: str | Mapping[str, Any]) -> dict[str, Ed25519PublicKey]:
    """The Ed25519 keys of a JSON Web Key Set, by ``kid`` (other or malformed keys skipped).

    Raises:
        ValueError: Not a JWKS document at all.
    """
    data = json.loads(document) if isinstance(document, str) else document
    if not isinstance(data, Mapping) or not isinstance(data.get("keys", []), list):
        raise ValueError("not a JSON Web Key Set")
    keys: dict[str, Ed25519PublicKey] = {}
    for jwk in data.get("keys", []):
        if not isinstance(jwk, Mapping):
            continue
        kid = jwk.get("kid")
        if not isinstance(kid, str) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
            continue
        try:
            key = OKPAlgorithm.from_jwk(dict(jwk))
        except (jwt.PyJWTError, ValueError):
            continue
        if isinstance(key, Ed25519PublicKey):
            keys[kid] = key
    return keys


class JwksKeys(Lifecycle):
    """IAM's public keys: fixed ones from settings, and its JWKS fetched over HTTP.

    The set is fetched at start (a failure is only logged: IAM may start later), again
    when a token names a ``kid`` not known yet (a rotation), at most once per
    ``min_refresh_s`` so tokens with made-up ``kid`` values cannot make it hammer IAM,
    and every ``refresh_interval_s`` in the background, so keys IAM no longer lists (a
    retired key's last tokens expired) stop verifying here too.

    Args:
        url: IAM's JWKS, e.g. ``http://127.0.0.1:8101/.well-known/jwks.json``; ``None``
            trusts ``static`` only.
        static: A JWKS document trusted as it is (tests, or keys pinned by an operator).
        min_refresh_s: Least time between two fetches for an unknown ``kid``. Default: 1 s.
        refresh_interval_s: Time between background fetches. Default: 300 s.
    """

    name = "identity-keys"

    def __init__(
        self,
        url: str | None,
        *,
        static: str | None = None,
        min_refresh_s: float = 1.0,
        refresh_interval_s: float = 300.0,
    ) -> None:
        self._url = url
        self._static = parse_jwks(static) if static else {}
        self._fetched: dict[str, Ed25519PublicKey] = {}
        self._min_refresh_s = min_refresh_s
        self._refresh_interval_s = refresh_interval_s
        self._last_fetch = -min_refresh_s
        self._fetching = asyncio.Lock()
        self._client: httpx.AsyncClient | None = None
        self._refresher: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> JwksKeys:
        """The keys a service's settings name: ``identity_jwks`` if set, else IAM's JWKS."""
        url = None if settings.identity_jwks else settings.iam_jwks_url
        return cls(url, static=settings.identity_jwks)

    async def start(self) -> None:
        """Open the HTTP client and try a first fetch."""
        if self._url is None:
            return
        self._client = httpx.AsyncClient(timeout=2.0, trust_env=False)
        await self._refresh()
        self._refresher = asyncio.create_task(self._refresh_periodically(), name="jwks-refresh")

    async def stop(self) -> None:
        """Stop refreshing and close the HTTP client."""
        refresher, self._refresher = self._refresher, None
        if refresher is not None:
            refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refresher
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def check(self) -> None:
        """Always ready: IAM being down must not make every service unready."""

    async def public_key(self, kid: str) -> Ed25519PublicKey | None:
        """The key ``kid`` names, fetching IAM's set again if it is new (rate-limited)."""
        key = self._static.get(kid) or self._fetched.get(kid)
        if key is None and self._client is not None:
            async with self._fetching:
                key = self._fetched.get(kid)
                if key is None and time.monotonic() - self._last_fetch >= self._min_refresh_s:
                    await self._refresh()
                    key = self._fetched.get(kid)
        return key

    async def _refresh_periodically(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_interval_s)
            async with self._fetching:
                await self._refresh()

    async def _refresh(self) -> None:
        assert self._client is not None and self._url is not None
        self._last_fetch = time.monotonic()
        try:
            response = await self._client.get(self._url)
            response.raise_for_status()
            self._fetched = parse_jwks(response.text)
        except (httpx.HTTPError, ValueError) as exc:
            logger.warning("fetching IAM's JWKS failed: %s", exc)


class IdentityVerifier:
    """Verifies identity tokens, remembering each valid one until it expires.

    Args:
        keys: Where the signing keys come from (:class:`JwksKeys`, opened as a resource
            of the service, or IAM's own keyring).
        issuer: Expected ``iss``. Default: ``"interlock"``.
    """

    def __init__(self, keys: KeySource, *, issuer: str = "interlock") -> None:
        self._keys = keys
        self._issuer = issuer
        self._verified: dict[str, tuple[float, Principal]] = {}

    @property
    def keys(self) -> KeySource:
        """Where the signing keys come from."""
        return self._keys

    def remembered(self, token: str) -> Principal | None:
        """Who ``token`` names if verified before and not expired, else ``None``."""
        entry = self._verified.get(token)
        if entry is None or entry[0] <= time.time():
            return None
        return entry[1]

    async def verify_metadata(self, metadata: Iterable[tuple[str, str | bytes]]) -> Principal:
        """Who the identity token in a gRPC call's metadata names.

        Raises:
            InvalidIdentity: None there, or not valid.
        """
        token = next((value for key, value in metadata if key == IDENTITY_METADATA), None)
        if not isinstance(token, str) or not token:
            raise InvalidIdentity("no identity token in the call's metadata")
        return await self.verify(token)

    async def verify(self, token: str) -> Principal:
        """Who a valid identity token names.

        Raises:
            InvalidIdentity: Otherwise (the message says why; never the token).
        """
        principal = self.remembered(token)
        if principal is not None:
            return principal
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidIdentity(f"malformed identity token: {exc}") from None
        kid = header.get("kid")
        if (
            header.get("alg") != IDENTITY_ALGORITHM
            or header.get("typ") != IDENTITY_TOKEN_TYPE
            or not isinstance(kid, str)
        ):
            raise InvalidIdentity("not an EdDSA identity token with a kid")
        key = await self._keys.public_key(kid)
        if key is None:
            raise InvalidIdentity("identity token signed by an unknown key")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[IDENTITY_ALGORITHM],
                audience=IDENTITY_AUDIENCE,
                issuer=self._issuer,
                leeway=_LEEWAY_S,
                options={"require": ["iss", "aud", "sub", "exp", "iat"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidIdentity(f"invalid identity token: {exc}") from None
        principal = _principal(claims)
        self._remember(token, float(claims["exp"]), principal)
        return principal

    def _remember(self, token: str, expires_at: float, principal: Principal) -> None:
        if len(self._verified) >= _CACHE_SIZE:
            now = time.time()
            self._verified = {t: e for t, e in self._verified.items() if e[0] > now}
            while len(self._verified) >= _CACHE_SIZE:  # all alive: drop the oldest
                del self._verified[next(iter(self._verified))]
        self._verified[token] = (expires_at, principal)


def _principal(claims: Mapping[str, Any]) -> Principal:
    subject, tenant, roles = claims.get("sub"), claims.get("tid"), claims.get("roles")
    if (
        not isinstance(subject, str)
        or not subject
        or not isinstance(tenant, str)
        or not tenant
        or not isinstance(roles, list)
        or not all(isinstance(role, str) for role in roles)
    ):
        raise InvalidIdentity("identity token lacks subject, tenant or roles")
    return Principal(subject=subject, tenant=tenant, roles=frozenset(roles))


def _unauthenticated(detail: str) -> Problem:
    return Problem(401, "Unauthenticated", type_="unauthenticated", detail=detail)


async def require_principal(connection: HTTPConnection) -> Principal:
    """FastAPI dependency: the caller, or a 401 problem when no valid identity token came.

    Reads the header itself rather than declaring a FastAPI ``Header`` parameter: every
    route depends on this, and FastAPI's per-parameter validation cost a sizeable share
    of a small request's CPU.
    """
    token = connection.headers.get(IDENTITY_HEADER)
    if not token:
        raise _unauthenticated(
            "This API is reachable only through the gateway, with a valid token."
        )
    verifier: IdentityVerifier = connection.app.state.identity
    principal = verifier.remembered(token)
    if principal is None:
        try:
            principal = await verifier.verify(token)
        except InvalidIdentity as exc:
            logger.info("identity refused: %s", exc)
            raise _unauthenticated("The identity token is invalid or expired.") from None
    return principal


CurrentPrincipal = Annotated[Principal, Depends(require_principal)]
"""Annotate a route parameter with this to receive the caller."""
