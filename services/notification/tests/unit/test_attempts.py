import random
from datetime import UTC, datetime

from interlock.notification.domain import (
    Verdict,
    next_delay_s,
    parse_retry_after,
    smtp_verdict,
    webhook_verdict,
)

SCHEDULE = (0.0, 5.0, 300.0)


def test_2xx_succeeds_410_disables_everything_else_retries() -> None:
    assert webhook_verdict(200) is Verdict.SUCCEEDED
    assert webhook_verdict(204) is Verdict.SUCCEEDED
    assert webhook_verdict(410) is Verdict.GONE
    for status in (301, 302, 400, 404, 429, 500, 503):
        assert webhook_verdict(status) is Verdict.RETRY


def test_permanent_smtp_answers_fail_transient_ones_retry() -> None:
    assert smtp_verdict(550) is Verdict.FAILED
    assert smtp_verdict(451) is Verdict.RETRY
    assert smtp_verdict(None) is Verdict.RETRY


def test_the_schedule_gives_each_delay_with_bounded_jitter_then_none() -> None:
    rng = random.Random(7)
    delays = [
        next_delay_s(made, SCHEDULE, jitter=0.2, max_retry_after_s=60, rng=rng) for made in (1, 2)
    ]
    assert delays[0] is not None and 4.0 <= delays[0] <= 6.0
    assert delays[1] is not None and 240.0 <= delays[1] <= 360.0
    assert next_delay_s(3, SCHEDULE, jitter=0.2, max_retry_after_s=60) is None


def test_retry_after_lengthens_the_wait_up_to_its_cap() -> None:
    assert next_delay_s(1, SCHEDULE, jitter=0, retry_after_s=30, max_retry_after_s=60) == 30
    assert next_delay_s(1, SCHEDULE, jitter=0, retry_after_s=1, max_retry_after_s=60) == 5
    assert next_delay_s(1, SCHEDULE, jitter=0, retry_after_s=999, max_retry_after_s=60) == 60


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
    assert parse_retry_after("120") == 120
    assert parse_retry_after("Thu, 01 Jan 2026 09:00:30 GMT", now=now) == 30
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
