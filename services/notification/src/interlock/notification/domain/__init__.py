"""The notification service's pure logic: subscriptions, messages, signatures, retries."""

from interlock.notification.domain.attempts import (
    AttemptOutcome,
    Verdict,
    next_delay_s,
    parse_retry_after,
    smtp_verdict,
    webhook_verdict,
)
from interlock.notification.domain.emails import Email, render
from interlock.notification.domain.errors import (
    DeliveryNotFoundError,
    InvalidSubscriptionError,
    NotAWebhookError,
    NotificationError,
    SubscriptionNotFoundError,
    TargetNotAllowedError,
)
from interlock.notification.domain.messages import (
    TEST_EVENT,
    FailedTask,
    RunFacts,
    rfc3339,
    run_message,
    test_message,
)
from interlock.notification.domain.sealing import SecretSealer, is_plain
from interlock.notification.domain.signing import new_secret, signature, signature_header
from interlock.notification.domain.subscriptions import (
    Channel,
    EventName,
    RunFilter,
    check_email_recipients,
    check_events,
    check_filter,
    check_name,
    check_target,
    check_webhook_url,
)

__all__ = [
    "TEST_EVENT",
    "AttemptOutcome",
    "Channel",
    "DeliveryNotFoundError",
    "Email",
    "EventName",
    "FailedTask",
    "InvalidSubscriptionError",
    "NotAWebhookError",
    "NotificationError",
    "RunFacts",
    "RunFilter",
    "SecretSealer",
    "SubscriptionNotFoundError",
    "TargetNotAllowedError",
    "Verdict",
    "check_email_recipients",
    "check_events",
    "check_filter",
    "check_name",
    "check_target",
    "check_webhook_url",
    "is_plain",
    "new_secret",
    "next_delay_s",
    "parse_retry_after",
    "render",
    "rfc3339",
    "run_message",
    "signature",
    "signature_header",
    "smtp_verdict",
    "test_message",
    "webhook_verdict",
]
