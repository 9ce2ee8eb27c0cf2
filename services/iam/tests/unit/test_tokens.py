import time

import jwt
import pytest

from interlock.iam.domain import (
    AccessTokenClaims,
    Keyring,
    TokenError,
    UnknownKeyError,
    decode_access_token,
    generate_signing_key,
    hash_secret,
    is_api_key,
    issue_access_token,
    new_api_key,
    new_refresh_token,
)
from interlock.iam.domain._keys import SigningKey

CLAIMS = AccessTokenClaims(subject="u1", tenant="acme", roles=("developer",), session_id="s1")


def _keyring() -> tuple[Keyring, SigningKey]:
    key = generate_signing_key(time.time())
    return Keyring([key]), key


def test_issued_token_decodes_to_its_principal() -> None:
    keyring, key = _keyring()
    now = time.time()
    token, expires_at = issue_access_token(key, CLAIMS, issuer="il", now=now, ttl_s=900)
    assert jwt.get_unverified_header(token) == {"alg": "EdDSA", "kid": key.kid, "typ": "JWT"}
    principal = decode_access_token(keyring, token, issuer="il", now=now)
    assert (principal.subject, principal.tenant, principal.roles) == ("u1", "acme", ("developer",))
    assert principal.session_id == "s1"
    assert principal.expires_at == expires_at == int(now + 900)


def test_expired_token_is_refused() -> None:
    keyring, key = _keyring()
    token, _ = issue_access_token(key, CLAIMS, issuer="il", now=time.time() - 1000, ttl_s=900)
    with pytest.raises(TokenError, match="expired"):
        decode_access_token(keyring, token, issuer="il", now=time.time())


def test_other_issuer_is_refused() -> None:
    keyring, key = _keyring()
    token, _ = issue_access_token(key, CLAIMS, issuer="other", now=time.time(), ttl_s=900)
    with pytest.raises(TokenError):
        decode_access_token(keyring, token, issuer="il", now=time.time())


def test_unknown_kid_and_wrong_key_are_refused() -> None:
    keyring, key = _keyring()
    stranger = generate_signing_key(time.time())
    token, _ = issue_access_token(stranger, CLAIMS, issuer="il", now=time.time(), ttl_s=900)
    with pytest.raises(UnknownKeyError):
        decode_access_token(keyring, token, issuer="il", now=time.time())
    impostor = SigningKey(kid=key.kid, private_pem=stranger.private_pem, created_at=time.time())
    forged, _ = issue_access_token(impostor, CLAIMS, issuer="il", now=time.time(), ttl_s=900)
    with pytest.raises(TokenError, match="invalid") as refused:
        decode_access_token(keyring, forged, issuer="il", now=time.time())
    assert not isinstance(refused.value, UnknownKeyError)


def test_alg_none_and_hmac_are_refused() -> None:
    keyring, key = _keyring()
    payload = {"iss": "il", "aud": "il", "sub": "u1", "exp": time.time() + 60}
    unsigned = jwt.encode(payload, "", algorithm="none", headers={"kid": key.kid})
    hmac = jwt.encode(payload, "a-shared-secret-of-32-bytes-long!", headers={"kid": key.kid})
    for token in (unsigned, hmac, "not-a-jwt"):
        with pytest.raises(TokenError):
            decode_access_token(keyring, token, issuer="il", now=time.time())


def test_retired_key_verifies_until_it_expires_and_never_signs() -> None:
    now = time.time()
    old = generate_signing_key(now - 100)
    token, _ = issue_access_token(old, CLAIMS, issuer="il", now=now, ttl_s=900)
    retired = SigningKey(
        kid=old.kid,
        private_pem=old.private_pem,
        created_at=old.created_at,
        retired_at=now,
        expires_at=now + 900,
    )
    new = generate_signing_key(now)
    keyring = Keyring([retired, new])
    assert keyring.signer() == new
    assert decode_access_token(keyring, token, issuer="il", now=now).subject == "u1"
    assert {key["kid"] for key in keyring.jwks(now)["keys"]} == {old.kid, new.kid}
    assert [key["kid"] for key in keyring.jwks(now + 901)["keys"]] == [new.kid]
    with pytest.raises(TokenError, match="unknown or expired"):
        decode_access_token(keyring, token, issuer="il", now=now + 901)


def test_rotation_is_due_with_no_signer_or_an_old_one() -> None:
    assert Keyring().needs_rotation(now=0, max_age_s=10)
    keyring = Keyring([generate_signing_key(100)])
    assert not keyring.needs_rotation(now=105, max_age_s=10)
    assert keyring.needs_rotation(now=110, max_age_s=10)


def test_private_key_never_appears_in_repr() -> None:
    key = generate_signing_key(0)
    assert "PRIVATE" not in repr(key)
    assert "PRIVATE" in key.private_pem


def test_secrets_are_random_typed_and_hashed() -> None:
    key, other = new_api_key(), new_api_key()
    assert key != other
    assert is_api_key(key)
    assert not is_api_key(new_refresh_token())
    assert len(key) > 40
    assert hash_secret(key) == hash_secret(key) != hash_secret(other)
    assert key not in hash_secret(key)


def test_api_keys_carry_a_checksum_checked_without_io() -> None:
    from interlock.iam.domain import ApiKeyShape, api_key_shape, new_api_key

    key = new_api_key()
    assert key.startswith("ilk_") and api_key_shape(key) is ApiKeyShape.CHECKED
    flipped = key[:10] + ("A" if key[10] != "A" else "B") + key[11:]
    assert api_key_shape(flipped) is ApiKeyShape.MALFORMED
    legacy = "ilk_" + "x" * 43  # the format issued before checksums
    assert api_key_shape(legacy) is ApiKeyShape.LEGACY
    for garbage in ("ilk_", "ilk_short", "ilk_" + "x" * 60, "ilk_" + "!" * 43, "nope"):
        assert api_key_shape(garbage) is ApiKeyShape.MALFORMED


async def test_identity_tokens_verify_in_services_and_are_no_access_tokens() -> None:
    from interlock.common.identity import IdentityVerifier, parse_jwks
    from interlock.iam.domain import AuthPrincipal, PrincipalKind, issue_identity_token

    keyring, key = _keyring()
    principal = AuthPrincipal(
        subject="u1", kind=PrincipalKind.USER, tenant="acme", roles=("viewer",), expires_at=None
    )
    now = time.time()
    token = issue_identity_token(key, principal, issuer="il", now=now, ttl_s=60)

    class Keys:
        async def public_key(self, kid: str) -> object:
            return parse_jwks(keyring.jwks(now)).get(kid)

    verified = await IdentityVerifier(Keys(), issuer="il").verify(token)  # type: ignore[arg-type]
    assert (verified.subject, verified.tenant, verified.roles) == ("u1", "acme", {"viewer"})
    with pytest.raises(TokenError):
        decode_access_token(keyring, token, issuer="il", now=now)
