"""Opaque secrets: API keys and refresh tokens, and how they are stored (hashed).

Both are 256-bit random values, so a fast hash (SHA-256) is enough to store them:
unlike passwords they cannot be guessed, and the authorizer must look a key up on
every cache miss without spending Argon2's deliberate cost.

An API key ends with a checksum of the rest (48 bits of SHA-256), so the authorizer
refuses a mistyped or made-up key without a database lookup. Keys issued before the
checksum existed (*legacy* keys, 47 characters) keep working: the authorizer knows
their hashes from start-up, and none are issued any more.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from enum import StrEnum

API_KEY_PREFIX = "ilk_"
"""Every API key starts with this, which tells it apart from a JWT (and from other
services' secrets in a leak scanner)."""
_REFRESH_PREFIX = "ilr_"
_BODY_CHARS = 43  # 32 random bytes, base64url without padding
_CHECKSUM_CHARS = 8  # 6 bytes of SHA-256, base64url
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")


class ApiKeyShape(StrEnum):
    """What the form of a presented API key says before any lookup."""

    CHECKED = "checked"
    """Current format, checksum correct: worth a lookup."""
    LEGACY = "legacy"
    """Issued before checksums: a lookup only if its hash is a known legacy key's."""
    MALFORMED = "malformed"
    """Neither: refused at once."""


def _checksum(body: str) -> str:
    digest = hashlib.sha256(body.encode()).digest()[:6]
    return base64.urlsafe_b64encode(digest).decode()


def new_api_key() -> str:
    """A fresh API key: the prefix, 256 random bits and a checksum of both."""
    body = API_KEY_PREFIX + secrets.token_urlsafe(32)
    return body + _checksum(body)


def api_key_shape(token: str) -> ApiKeyShape:
    """Classify an API key by its form alone (no I/O, constant work)."""
    rest = token[len(API_KEY_PREFIX) :]
    if not token.startswith(API_KEY_PREFIX) or _BASE64URL.fullmatch(rest) is None:
        return ApiKeyShape.MALFORMED
    if len(rest) == _BODY_CHARS:
        return ApiKeyShape.LEGACY
    if len(rest) == _BODY_CHARS + _CHECKSUM_CHARS:
        body, checksum = token[:-_CHECKSUM_CHARS], token[-_CHECKSUM_CHARS:]
        if hmac.compare_digest(checksum, _checksum(body)):
            return ApiKeyShape.CHECKED
    return ApiKeyShape.MALFORMED


def new_refresh_token() -> str:
    """A fresh opaque refresh token (256 random bits)."""
    return _REFRESH_PREFIX + secrets.token_urlsafe(32)


def is_api_key(token: str) -> bool:
    """Whether ``token`` claims to be an API key (rather than a JWT)."""
    return token.startswith(API_KEY_PREFIX)


def hash_secret(secret: str) -> str:
    """The stored form of an API key or refresh token: hex SHA-256."""
    return hashlib.sha256(secret.encode()).hexdigest()
