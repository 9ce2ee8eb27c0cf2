from interlock.iam.domain import LockoutPolicy

POLICY = LockoutPolicy(max_failures=3, lockout_s=60, max_lockout_s=600)


def test_no_lockout_below_the_limit() -> None:
    assert POLICY.after_failure(1, now=1000) is None
    assert POLICY.after_failure(2, now=1000) is None


def test_lockout_starts_at_the_limit_and_doubles_up_to_the_maximum() -> None:
    assert POLICY.after_failure(3, now=1000) == 1060
    assert POLICY.after_failure(4, now=1000) == 1120
    assert POLICY.after_failure(5, now=1000) == 1240
    assert POLICY.after_failure(50, now=1000) == 1600
    assert POLICY.after_failure(10_000, now=1000) == 1600


def test_retry_after_counts_down_to_none() -> None:
    assert LockoutPolicy.retry_after_s(None, now=1000) is None
    assert LockoutPolicy.retry_after_s(1060, now=1000) == 60
    assert LockoutPolicy.retry_after_s(1060, now=1060) is None
