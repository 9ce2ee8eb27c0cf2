"""The notification domain's errors; :mod:`interlock.notification.errors` draws their tree."""

from __future__ import annotations

from interlock.common.errors import InterlockError


class NotificationError(InterlockError):
    """Base of the notification service's domain errors (a 400 unless a subclass says so)."""

    status = 400
    title = "Bad request"
    problem_type = "bad-request"


class InvalidSubscriptionError(NotificationError):
    """A subscription's fields are invalid (the detail names the field)."""

    status = 422
    title = "Invalid subscription"
    problem_type = "invalid-subscription"


class TargetNotAllowedError(InvalidSubscriptionError):
    """A webhook URL's host is, or resolves to, an address webhooks may not reach."""

    title = "Webhook target not allowed"
    problem_type = "target-not-allowed"


class SubscriptionNotFoundError(NotificationError):
    """No such subscription in the caller's tenant."""

    status = 404
    title = "Subscription not found"
    problem_type = "subscription-not-found"


class DeliveryNotFoundError(NotificationError):
    """No such delivery in the caller's tenant."""

    status = 404
    title = "Delivery not found"
    problem_type = "delivery-not-found"


class NotAWebhookError(NotificationError):
    """Secrets belong to webhook subscriptions only."""

    status = 409
    title = "Not a webhook subscription"
    problem_type = "not-a-webhook"
