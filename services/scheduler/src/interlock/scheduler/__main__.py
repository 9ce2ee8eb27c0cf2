"""``python -m interlock.scheduler``: run the scheduler service."""

from __future__ import annotations

from interlock.common.runtime import run_service
from interlock.scheduler.app import create_app
from interlock.scheduler.settings import SchedulerSettings


def main() -> None:
    """Read settings from the environment and serve until signalled."""
    settings = SchedulerSettings()
    run_service(create_app(settings), settings)


if __name__ == "__main__":
    main()
