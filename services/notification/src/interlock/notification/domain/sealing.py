"""Webhook signing secrets at rest: sealed with the service's key-encryption keys.

A secret is sealed (:mod:`interlock.common.sealing`: AES-256-GCM) with the subscription's
id as associated data, so a sealed value copied to another subscription does not open.
The current and the rotated-out secret of one subscription share that context: rotating
moves the sealed value from one column to the other unchanged. Values written before
sealing existed are plain ``whsec_`` secrets (no ``kek_id:`` prefix); they still open,
and the service seals them at start-up.
"""

from __future__ import annotations

import uuid

from interlock.common.sealing import KeyEncryptionKeys
from interlock.notification.domain.signing import SECRET_PREFIX


class SecretSealer:
    """Seals and opens subscriptions' signing secrets.

    Args:
        keks: The service's key-encryption keys (the first seals, all open).
    """

    def __init__(self, keks: KeyEncryptionKeys) -> None:
        self._keks = keks

    @property
    def primary_id(self) -> str:
        """The id of the KEK that seals."""
        return self._keks.primary_id

    def seal(self, subscription_id: uuid.UUID, secret: str) -> str:
        """``secret`` sealed for the subscription ``subscription_id``."""
        return self._keks.seal(secret.encode(), context=_context(subscription_id))

    def open(self, subscription_id: uuid.UUID, stored: str) -> str:
        """The secret a stored value holds (a plain one from before sealing as it is).

        Raises:
            SealingError: Sealed with an unknown KEK, altered, or another row's value.
        """
        if is_plain(stored):
            return stored
        return self._keks.unseal(stored, context=_context(subscription_id)).decode()

    def reseal(self, subscription_id: uuid.UUID, stored: str | None) -> str | None:
        """``stored`` sealed with the primary KEK (``None`` stays ``None``)."""
        if stored is None or self._keks.sealed_with_primary(stored):
            return stored
        return self.seal(subscription_id, self.open(subscription_id, stored))


def is_plain(stored: str) -> bool:
    """Whether a stored value is a plain ``whsec_`` secret (sealed ones start ``kek_id:``)."""
    return stored.startswith(SECRET_PREFIX) and ":" not in stored


def _context(subscription_id: uuid.UUID) -> str:
    return f"subscription:{subscription_id}"
