"""Standard Webhooks signatures: ``whsec_`` secrets and ``v1`` HMAC-SHA256 signatures.

The signed content is ``{webhook-id}.{webhook-timestamp}.{body}``; the signature is
``v1,`` followed by the base64 HMAC-SHA256 of it under the secret's bytes (the base64
after ``whsec_``). While a rotated-out secret is still in its grace period the message
is signed with both, the signatures separated by a space, so a receiver that knows
either secret accepts it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's marker, no secret
"""How the specification marks a symmetric signing secret."""
SECRET_BYTES = 32
"""Random bytes in a new secret (the specification asks for 24 to 64)."""


def new_secret() -> str:
    """A fresh signing secret: ``whsec_`` and the base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``v1,<base64>`` signature of one attempt under ``secret``."""
    signed = b".".join((message_id.encode(), str(timestamp).encode(), body))
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(secrets_: Sequence[str], message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: one signature per active secret, space-separated."""
    return " ".join(signature(secret, message_id, timestamp, body) for secret in secrets_)
