"""Password hashing: Argon2id through pwdlib (passlib is unmaintained)."""

from __future__ import annotations

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher


class PasswordHasher:
    """Hashes and verifies passwords with Argon2id (pwdlib's default parameters)."""

    def __init__(self) -> None:
        self._hash = PasswordHash((Argon2Hasher(),))
        # Verified against when a login names no user, so unknown and known usernames
        # take the same time to refuse.
        self._decoy = self._hash.hash("decoy-password-that-no-one-has")

    def hash(self, password: str) -> str:
        """The Argon2id hash of ``password`` (PHC string, salted)."""
        return self._hash.hash(password)

    def verify(self, password: str, hashed: str | None) -> bool:
        """Whether ``password`` matches ``hashed``; ``None`` checks a decoy (always false)."""
        if hashed is None:
            self._hash.verify(password, self._decoy)
            return False
        return self._hash.verify(password, hashed)
