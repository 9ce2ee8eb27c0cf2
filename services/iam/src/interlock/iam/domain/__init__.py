"""IAM's decisions, free of I/O: tokens, keys, secrets, lockout, caching, revocation."""

from interlock.common.sealing import KeyEncryptionKeys, SealingError, new_key_encryption_key
from interlock.iam.domain._browser import (
    CSRF_COOKIE,
    CSRF_HEADER,
    REFRESH_COOKIE,
    REFRESH_COOKIE_PATH,
    SAFE_METHODS,
    SESSION_COOKIE,
    cookie_value,
    csrf_matches,
    csrf_token,
)
from interlock.iam.domain._cache import TokenCache
from interlock.iam.domain._keys import Keyring, SigningKey, generate_signing_key
from interlock.iam.domain._lockout import LockoutPolicy, LoginAttempts
from interlock.iam.domain._passwords import PasswordHasher
from interlock.iam.domain._principal import AuthPrincipal, PrincipalKind
from interlock.iam.domain._revocations import RevocationKind, RevocationList
from interlock.iam.domain._secrets import (
    API_KEY_PREFIX,
    ApiKeyShape,
    api_key_shape,
    hash_secret,
    is_api_key,
    new_api_key,
    new_refresh_token,
)
from interlock.iam.domain._tokens import (
    AccessTokenClaims,
    TokenError,
    UnknownKeyError,
    decode_access_token,
    issue_access_token,
    issue_identity_token,
)

__all__ = [
    "API_KEY_PREFIX",
    "CSRF_COOKIE",
    "CSRF_HEADER",
    "REFRESH_COOKIE",
    "REFRESH_COOKIE_PATH",
    "SAFE_METHODS",
    "SESSION_COOKIE",
    "AccessTokenClaims",
    "ApiKeyShape",
    "AuthPrincipal",
    "KeyEncryptionKeys",
    "Keyring",
    "LockoutPolicy",
    "LoginAttempts",
    "PasswordHasher",
    "PrincipalKind",
    "RevocationKind",
    "RevocationList",
    "SealingError",
    "SigningKey",
    "TokenCache",
    "TokenError",
    "UnknownKeyError",
    "api_key_shape",
    "cookie_value",
    "csrf_matches",
    "csrf_token",
    "decode_access_token",
    "generate_signing_key",
    "hash_secret",
    "is_api_key",
    "issue_access_token",
    "issue_identity_token",
    "new_api_key",
    "new_key_encryption_key",
    "new_refresh_token",
]
