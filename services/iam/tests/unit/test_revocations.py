from interlock.iam.domain import AuthPrincipal, PrincipalKind, RevocationKind, RevocationList

USER = AuthPrincipal(
    subject="u1",
    kind=PrincipalKind.USER,
    tenant="t",
    roles=("viewer",),
    expires_at=200,
    session_id="s1",
)
KEY = AuthPrincipal(
    subject="k1", kind=PrincipalKind.API_KEY, tenant="t", roles=("viewer",), expires_at=None
)


def test_a_revoked_session_revokes_its_access_tokens_only() -> None:
    revocations = RevocationList()
    revocations.add(RevocationKind.SESSION, "s1", expires_at=200)
    assert revocations.is_revoked(USER)
    assert not revocations.is_revoked(KEY)


def test_a_revoked_api_key_is_not_confused_with_a_session_of_the_same_id() -> None:
    revocations = RevocationList()
    revocations.add(RevocationKind.SESSION, "k1", expires_at=None)
    assert not revocations.is_revoked(KEY)
    revocations.add(RevocationKind.API_KEY, "k1", expires_at=None)
    assert revocations.is_revoked(KEY)


def test_prune_forgets_revocations_once_nothing_they_name_is_valid() -> None:
    revocations = RevocationList()
    revocations.add(RevocationKind.SESSION, "s1", expires_at=200)
    revocations.add(RevocationKind.API_KEY, "k1", expires_at=None)
    revocations.prune(now=199)
    assert len(revocations) == 2
    revocations.prune(now=200)
    assert len(revocations) == 1
    assert revocations.is_revoked(KEY)
