"""The notification service's errors, rooted in :class:`interlock.common.errors.InterlockError`.

The domain and the service raise them; the REST adapter answers each with the RFC 9457
problem its class declares (``interlock.common.problems``)::

    InterlockError
     ├── InvalidPageTokenError          400  invalid-page-token      a page token this list
     │                                                               did not issue
     ├── InvalidDurationError           422  invalid-duration        a grace period that is
     │                                                               no duration
     └── NotificationError              400  bad-request
          ├── InvalidSubscriptionError   422  invalid-subscription    the detail names the
          │    │                                                     field
          │    └── TargetNotAllowedError 422  target-not-allowed      the SSRF guard refused
          │                                                          the webhook URL's host
          ├── SubscriptionNotFoundError  404  subscription-not-found  also another tenant's
          ├── DeliveryNotFoundError      404  delivery-not-found      also another tenant's
          └── NotAWebhookError           409  not-a-webhook           rotating an email
                                                                     subscription's secret
"""

from __future__ import annotations

from interlock.common.errors import InvalidDurationError, InvalidPageTokenError
from interlock.notification.domain.errors import (
    DeliveryNotFoundError,
    InvalidSubscriptionError,
    NotAWebhookError,
    NotificationError,
    SubscriptionNotFoundError,
    TargetNotAllowedError,
)

__all__ = [
    "DeliveryNotFoundError",
    "InvalidDurationError",
    "InvalidPageTokenError",
    "InvalidSubscriptionError",
    "NotAWebhookError",
    "NotificationError",
    "SubscriptionNotFoundError",
    "TargetNotAllowedError",
]
