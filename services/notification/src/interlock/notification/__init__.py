"""Interlock notification service.

Subscriptions and deliveries: email and signed webhooks when runs end.
"""

from interlock.notification.app import create_app
from interlock.notification.settings import NotificationSettings

__all__ = ["NotificationSettings", "create_app"]
