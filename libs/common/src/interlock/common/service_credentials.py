"""Service credentials: how one Interlock service proves to another that it is one.

A deliberately simple hook, meant to be hardened in one place: today the caller sends
a shared secret from its settings in the gRPC metadata key
:data:`SERVICE_CREDENTIAL_METADATA`, and the callee accepts any of the secrets in its
own settings (several, to rotate), compared in constant time. Only calls that no user
request stands behind use it (a worker fetching a tenant secret for a task); a call
made on a user's behalf carries that user's identity instead.

A stronger scheme (IAM-issued short-lived service tokens, mutual TLS) replaces
:func:`credential_metadata` and :func:`is_valid_credential` without touching callers.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from pydantic import SecretStr

__all__ = ["SERVICE_CREDENTIAL_METADATA", "credential_metadata", "is_valid_credential"]

SERVICE_CREDENTIAL_METADATA = "x-interlock-service-credential"
"""gRPC metadata key of the credential."""


def credential_metadata(credential: SecretStr) -> tuple[tuple[str, str], ...]:
    """The metadata a caller sends with ``credential``."""
    return ((SERVICE_CREDENTIAL_METADATA, credential.get_secret_value()),)


def is_valid_credential(
    metadata: Iterable[tuple[str, str | bytes]], accepted: SecretStr | None
) -> bool:
    """Whether ``metadata`` carries one of the ``accepted`` credentials (comma-separated).

    No accepted credential configured: nothing is valid.
    """
    if accepted is None:
        return False
    sent = next((value for key, value in metadata if key == SERVICE_CREDENTIAL_METADATA), None)
    if not isinstance(sent, str) or not sent:
        return False
    return any(
        hmac.compare_digest(sent.encode(), candidate.strip().encode())
        for candidate in accepted.get_secret_value().split(",")
        if candidate.strip()
    )
