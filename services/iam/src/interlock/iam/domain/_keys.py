"""Signing keys: Ed25519 key pairs with a ``kid``, rotated; the keyring that verifies.

The newest key that is not retired signs. A retired key keeps verifying until
``expires_at`` (retirement plus the access-token lifetime), when the last token it
signed has expired; the JWKS lists exactly the keys that still verify.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwt.algorithms import OKPAlgorithm

ALGORITHM = "EdDSA"
"""JWS algorithm of every access token."""


@dataclass(frozen=True, kw_only=True)
class SigningKey:
    """One key pair. The private half is a secret: never log it (``repr`` omits it)."""

    kid: str
    private_pem: str = field(repr=False)
    """PKCS#8 PEM of the private key."""
    created_at: float
    retired_at: float | None = None
    """When it stopped signing (Unix time). Default: still signing."""
    expires_at: float | None = None
    """When it stops verifying (Unix time). Default: never while it signs."""
    _private: Ed25519PrivateKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        key = serialization.load_pem_private_key(self.private_pem.encode(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"signing key {self.kid} is not an Ed25519 key")
        object.__setattr__(self, "_private", key)

    @property
    def private_key(self) -> Ed25519PrivateKey:
        """The key that signs."""
        return self._private

    @property
    def public_key(self) -> Ed25519PublicKey:
        """The key that verifies."""
        return self._private.public_key()

    def public_jwk(self) -> dict[str, Any]:
        """The public key as a JWK (RFC 8037 ``OKP``), with ``kid``, ``alg`` and ``use``."""
        jwk: dict[str, Any] = OKPAlgorithm.to_jwk(self.public_key, as_dict=True)
        return {**jwk, "kid": self.kid, "alg": ALGORITHM, "use": "sig"}

    def verifies_at(self, now: float) -> bool:
        """Whether tokens it signed may still be accepted at ``now``."""
        return self.expires_at is None or self.expires_at > now


def generate_signing_key(now: float) -> SigningKey:
    """A fresh Ed25519 key pair with a random ``kid``."""
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return SigningKey(kid=secrets.token_hex(8), private_pem=pem, created_at=now)


class Keyring:
    """The signing keys a process knows: which one signs, which ones verify."""

    def __init__(self, keys: Iterable[SigningKey] = ()) -> None:
        self._keys: dict[str, SigningKey] = {}
        self.replace(keys)

    def replace(self, keys: Iterable[SigningKey]) -> None:
        """Know exactly ``keys`` from now on."""
        self._keys = {key.kid: key for key in keys}

    @property
    def keys(self) -> list[SigningKey]:
        """Every known key, newest first."""
        return sorted(self._keys.values(), key=lambda key: key.created_at, reverse=True)

    def signer(self) -> SigningKey | None:
        """The newest key that is not retired, or ``None``."""
        return next((key for key in self.keys if key.retired_at is None), None)

    def verifier(self, kid: str, now: float) -> SigningKey | None:
        """The key ``kid`` if it still verifies at ``now``."""
        key = self._keys.get(kid)
        return key if key is not None and key.verifies_at(now) else None

    def jwks(self, now: float) -> dict[str, list[dict[str, Any]]]:
        """The JSON Web Key Set of every key that still verifies at ``now``."""
        return {"keys": [key.public_jwk() for key in self.keys if key.verifies_at(now)]}

    def needs_rotation(self, now: float, max_age_s: float) -> bool:
        """Whether there is no signer, or it is older than ``max_age_s``."""
        signer = self.signer()
        return signer is None or now - signer.created_at >= max_age_s
