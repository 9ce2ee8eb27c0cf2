"""What one attempt's answer means, and when the next attempt is due.

A webhook attempt succeeds on 2xx and fails on anything else (redirects included: a
receiver updates its URL rather than have us follow it). ``410 Gone`` means the
receiver wants no more: the subscription is disabled. A ``Retry-After`` (on 429, 503 or
any failure) pushes the next attempt at least that far out. An email attempt fails for
good on a permanent SMTP answer (5xx) and is retried on a transient one (4xx) or a lost
connection.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


class Verdict(enum.Enum):
    """What an attempt's outcome makes of its delivery."""

    SUCCEEDED = "succeeded"
    """Delivered."""
    RETRY = "retry"
    """Failed; try again on the schedule, if it has attempts left."""
    FAILED = "failed"
    """Failed for good: no more attempts."""
    GONE = "gone"
    """Failed for good, and the subscription is to be disabled."""


@dataclass(frozen=True, kw_only=True)
class AttemptOutcome:
    """One attempt as it ended.

    Attributes:
        verdict: What it means for the delivery.
        status_code: The HTTP status or SMTP reply code, when there was an answer.
        error: Why it failed, in words; empty on success.
        response_excerpt: The start of the receiver's answer (bounded).
        retry_after_s: How long the receiver asked us to wait, when it did.
    """

    verdict: Verdict
    status_code: int | None = None
    error: str = ""
    response_excerpt: str = ""
    retry_after_s: float | None = None


def webhook_verdict(status_code: int) -> Verdict:
    """The verdict of a webhook answer with ``status_code``."""
    if 200 <= status_code < 300:
        return Verdict.SUCCEEDED
    if status_code == 410:
        return Verdict.GONE
    return Verdict.RETRY


def smtp_verdict(reply_code: int | None) -> Verdict:
    """The verdict of an SMTP failure: permanent (5xx) fails, anything else retries."""
    if reply_code is not None and 500 <= reply_code < 600:
        return Verdict.FAILED
    return Verdict.RETRY


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """``Retry-After`` in seconds: delay-seconds or an HTTP date; ``None`` when absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def next_delay_s(
    attempts_made: int,
    schedule_s: Sequence[float],
    *,
    jitter: float,
    retry_after_s: float | None = None,
    max_retry_after_s: float,
    rng: random.Random | None = None,
) -> float | None:
    """How long to wait before the next attempt, or ``None`` when none is left.

    Args:
        attempts_made: Attempts so far, the failed one included.
        schedule_s: The delay before each attempt (the first one's included).
        jitter: Largest fraction of the delay added or taken away at random.
        retry_after_s: What the receiver asked for; the wait is at least this much
            (capped at ``max_retry_after_s``).
        max_retry_after_s: Longest wait a receiver can ask for.
        rng: Source of the jitter. Default: the module's generator.
    """
    if attempts_made >= len(schedule_s):
        return None
    base = schedule_s[attempts_made]
    delay = base * (1 + (rng or random).uniform(-jitter, jitter)) if base else 0.0
    if retry_after_s is not None:
        delay = max(delay, min(retry_after_s, max_retry_after_s))
    return delay
