"""Opaque secrets: API keys and refresh tokens, and how they are stored (hashed).

Both are 256-bit random values, so a fast hash (SHA-256) is enough to store them:
unlike passwords they cannot be guessed, and the authorizer must look a key up on
every cache miss without spending Argon2's deliberate cost.
"""

from __future__ import annotations

import hashlib
import secrets

API_KEY_PREFIX = "ilk_"
"""Every API key starts with this, which tells it apart from a JWT (and from other
services' secrets in a leak scanner)."""
_REFRESH_PREFIX = "ilr_"


def new_api_key() -> str:
    """A fresh API key: the prefix and 256 random bits."""
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def new_refresh_token() -> str:
    """A fresh opaque refresh token (256 random bits)."""
    return _REFRESH_PREFIX + secrets.token_urlsafe(32)


def is_api_key(token: str) -> bool:
    """Whether ``token`` has the shape of an API key (rather than a JWT)."""
    return token.startswith(API_KEY_PREFIX)


def hash_secret(secret: str) -> str:
    """The stored form of an API key or refresh token: hex SHA-256."""
    return hashlib.sha256(secret.encode()).hexdigest()
