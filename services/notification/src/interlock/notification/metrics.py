"""Prometheus metrics of the notification service (served on ``/metrics`` with the others)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from interlock.notification.domain import AttemptOutcome, Channel

__all__ = [
    "DELIVERY_ATTEMPTS",
    "DELIVERY_DURATION",
    "PENDING_DELIVERIES",
    "RETRY_BACKLOG",
    "observe_attempt",
]

_MAX_ATTEMPT_LABEL = 10
"""Attempts past this one share the label ``10+`` (labels stay bounded)."""

DELIVERY_ATTEMPTS = Counter(
    "interlock_notification_delivery_attempts_total",
    "Delivery attempts, by channel (webhook, email), verdict (succeeded, retry, failed, "
    "gone) and attempt number.",
    ["channel", "verdict", "attempt"],
)
DELIVERY_DURATION = Histogram(
    "interlock_notification_delivery_duration_seconds",
    "Time one delivery attempt took until the receiver answered (or failed), by channel.",
    ["channel"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
PENDING_DELIVERIES = Gauge(
    "interlock_notification_pending_deliveries",
    "Deliveries not finished yet (counted up to a bound), at the last measure.",
)
RETRY_BACKLOG = Gauge(
    "interlock_notification_retry_backlog",
    "Pending deliveries that failed at least once and wait for a retry (counted up to a "
    "bound), at the last measure.",
)


def observe_attempt(
    channel: Channel, attempt: int, outcome: AttemptOutcome, seconds: float
) -> None:
    """Count one delivery attempt (``attempt`` counts from 1) and its duration."""
    number = str(attempt) if attempt < _MAX_ATTEMPT_LABEL else f"{_MAX_ATTEMPT_LABEL}+"
    DELIVERY_ATTEMPTS.labels(channel.value, outcome.verdict.value, number).inc()
    DELIVERY_DURATION.labels(channel.value).observe(seconds)
