"""Secrets a service keeps in its database, sealed with a key-encryption key (KEK).

IAM's signing keys and tenant secrets, and the notification service's webhook signing
secrets, are stored encrypted (AES-256-GCM, a fresh 96-bit nonce each time, the row's
own id as associated data so a sealed value cannot be moved to another row). The KEKs
come from the service's secret settings, never from the database: whoever reads the
database (a dump, a backup, a replica) gets no usable secret.

Several KEKs may be configured, each with an id; the first seals, all unseal, so a KEK
is rotated by putting a new one first: the service re-seals every stored secret with it
at start-up, after which the old one may be removed. The settings value reads
``id:base64url-key[,id:base64url-key...]`` with 32-byte keys. Each service has KEKs of
its own.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_KEK_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
_NONCE_BYTES = 12


class SealingError(Exception):
    """A KEK setting is malformed, or a sealed value cannot be opened.

    (An unknown KEK id, or a value tampered with or moved to another row.)
    """


def new_key_encryption_key(kek_id: str = "k1") -> str:
    """A fresh KEK in the settings format (``id:base64url``)."""
    return f"{kek_id}:{base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()}"


class KeyEncryptionKeys:
    """The configured KEKs: the first seals, every one unseals.

    Args:
        setting: ``id:base64url-key[,id:base64url-key...]`` (32-byte keys).

    Raises:
        SealingError: Malformed, empty, a repeated id or a key of another length.
    """

    def __init__(self, setting: str) -> None:
        self._keys: dict[str, AESGCM] = {}
        for entry in (part.strip() for part in setting.split(",")):
            kek_id, _, encoded = entry.partition(":")
            if _KEK_ID.fullmatch(kek_id) is None or kek_id in self._keys:
                raise SealingError("every key-encryption key needs a distinct id (id:key)")
            try:
                key = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
            except (binascii.Error, ValueError):
                raise SealingError(f"key-encryption key {kek_id} is not base64url") from None
            if len(key) != 32:
                raise SealingError(f"key-encryption key {kek_id} must be 32 bytes")
            self._keys[kek_id] = AESGCM(key)
        self._primary = next(iter(self._keys))

    @property
    def primary_id(self) -> str:
        """The id of the KEK that seals."""
        return self._primary

    def seal(self, plaintext: bytes, *, context: str) -> str:
        """``plaintext`` encrypted with the primary KEK, bound to ``context`` (e.g. a kid)."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._keys[self._primary].encrypt(nonce, plaintext, context.encode())
        return f"{self._primary}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def unseal(self, sealed: str, *, context: str) -> bytes:
        """The plaintext of :meth:`seal`'s output.

        Raises:
            SealingError: Unknown KEK id, or the value was altered or sealed for
                another context.
        """
        kek_id, _, encoded = sealed.partition(":")
        key = self._keys.get(kek_id)
        if key is None:
            raise SealingError(f"no key-encryption key {kek_id!r} is configured")
        try:
            raw = base64.urlsafe_b64decode(encoded)
            return key.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], context.encode())
        except (binascii.Error, ValueError, InvalidTag):
            raise SealingError("a sealed secret was altered or moved") from None

    def sealed_with_primary(self, sealed: str) -> bool:
        """Whether ``sealed`` is already sealed with the primary KEK."""
        return sealed.partition(":")[0] == self._primary
