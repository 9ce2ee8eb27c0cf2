"""Webhook secrets sealed per subscription: what opens, what moves to a new KEK."""

import uuid

import pytest

from interlock.common.sealing import KeyEncryptionKeys, SealingError, new_key_encryption_key
from interlock.notification.domain import SecretSealer, is_plain, new_secret


def test_a_sealed_secret_opens_for_its_subscription_only() -> None:
    sealer = SecretSealer(KeyEncryptionKeys(new_key_encryption_key("k1")))
    secret, owner = new_secret(), uuid.uuid4()
    sealed = sealer.seal(owner, secret)
    assert sealed.startswith("k1:") and secret not in sealed and not is_plain(sealed)
    assert sealer.open(owner, sealed) == secret
    with pytest.raises(SealingError):
        sealer.open(uuid.uuid4(), sealed)


def test_plain_values_from_before_sealing_open_and_reseal_under_the_first_kek() -> None:
    old = new_key_encryption_key("k1")
    owner, secret = uuid.uuid4(), new_secret()
    under_old = SecretSealer(KeyEncryptionKeys(old)).seal(owner, secret)
    rotated = SecretSealer(KeyEncryptionKeys(f"{new_key_encryption_key('k2')},{old}"))
    assert is_plain(secret) and rotated.open(owner, secret) == secret
    for stored in (secret, under_old):
        resealed = rotated.reseal(owner, stored)
        assert resealed is not None and resealed.startswith("k2:")
        assert rotated.open(owner, resealed) == secret
    already = rotated.seal(owner, secret)
    assert rotated.reseal(owner, already) == already
    assert rotated.reseal(owner, None) is None
