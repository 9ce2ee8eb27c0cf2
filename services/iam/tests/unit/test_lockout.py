from interlock.iam.domain import LockoutPolicy, LoginAttempts

POLICY = LockoutPolicy(max_failures=3, lockout_s=60, max_lockout_s=600)


def reserve_all(attempts: LoginAttempts, now: float, tries: int) -> list[LoginAttempts | None]:
    """``tries`` reservations at ``now``, as parallel logins would make them."""
    results: list[LoginAttempts | None] = []
    for _ in range(tries):
        reserved = POLICY.reserve(attempts, now)
        results.append(reserved)
        attempts = reserved or attempts
    return results


def test_attempts_are_counted_before_the_password_is_checked() -> None:
    results = reserve_all(LoginAttempts(), now=1000, tries=40)
    # Only max_failures attempts get a password check; the last of them locks the name.
    assert sum(result is not None for result in results) == 3
    assert results[2] == LoginAttempts(failures=0, lockouts=1, locked_until=1060)


def test_a_lockout_ends_and_gives_a_full_set_of_tries() -> None:
    locked = LoginAttempts(failures=0, lockouts=1, locked_until=1060)
    assert POLICY.reserve(locked, now=1059) is None
    # After the lockout, one wrong guess does not lock the name again.
    results = reserve_all(locked, now=1060, tries=2)
    assert results[-1] == LoginAttempts(failures=2, lockouts=1, locked_until=1060)


def test_lockouts_double_up_to_the_maximum() -> None:
    attempts, ends = LoginAttempts(), []
    now = 1000.0
    for _ in range(8):
        for reserved in reserve_all(attempts, now, tries=3):
            assert reserved is not None
            attempts = reserved
        assert attempts.locked_until is not None
        ends.append(attempts.locked_until - now)
        now = attempts.locked_until
    assert ends == [60, 120, 240, 480, 600, 600, 600, 600]


def test_retry_after_counts_down_to_none() -> None:
    assert LockoutPolicy.retry_after_s(None, now=1000) is None
    assert LockoutPolicy.retry_after_s(1060, now=1000) == 60
    assert LockoutPolicy.retry_after_s(1060, now=1060) is None
