"""``python -m interlock.notification``: run the notification service."""

from __future__ import annotations

from interlock.common.runtime import run_service
from interlock.notification.app import create_app
from interlock.notification.settings import NotificationSettings


def main() -> None:
    """Read settings from the environment and serve until signalled."""
    settings = NotificationSettings()
    run_service(create_app(settings), settings)


if __name__ == "__main__":
    main()
