"""Secrets at rest: sealed with a key-encryption key, rotated by putting a new one first."""

import pytest

from interlock.common.sealing import KeyEncryptionKeys, SealingError, new_key_encryption_key


def test_a_sealed_secret_opens_only_with_its_kek_and_context() -> None:
    old = new_key_encryption_key("k1")
    keks = KeyEncryptionKeys(old)
    sealed = keks.seal(b"-----BEGIN PRIVATE KEY-----", context="kid-1")
    assert b"PRIVATE" not in sealed.encode()
    assert sealed.startswith("k1:")
    assert keks.unseal(sealed, context="kid-1") == b"-----BEGIN PRIVATE KEY-----"
    with pytest.raises(SealingError):
        keks.unseal(sealed, context="kid-2")  # moved to another row
    tampered = sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB")
    with pytest.raises(SealingError):
        keks.unseal(tampered, context="kid-1")
    with pytest.raises(SealingError):
        KeyEncryptionKeys(new_key_encryption_key("k1")).unseal(sealed, context="kid-1")


def test_rotation_seals_with_the_first_and_opens_with_any() -> None:
    old = new_key_encryption_key("k1")
    sealed_before = KeyEncryptionKeys(old).seal(b"secret", context="kid")
    rotated = KeyEncryptionKeys(f"{new_key_encryption_key('k2')},{old}")
    assert rotated.primary_id == "k2"
    assert not rotated.sealed_with_primary(sealed_before)
    assert rotated.unseal(sealed_before, context="kid") == b"secret"
    assert rotated.sealed_with_primary(rotated.seal(b"secret", context="kid"))


@pytest.mark.parametrize(
    "setting", ["", "k1", "k1:short", "k1:" + "A" * 43 + ",k1:" + "A" * 43, "bad id:" + "A" * 43]
)
def test_malformed_settings_are_refused(setting: str) -> None:
    with pytest.raises(SealingError):
        KeyEncryptionKeys(setting)
