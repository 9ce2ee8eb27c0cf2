"""``python -m interlock.iam``: run the iam service."""

from __future__ import annotations

from interlock.common.runtime import run_service
from interlock.iam.app import create_app
from interlock.iam.settings import IamSettings


def main() -> None:
    """Read settings from the environment and serve until signalled."""
    settings = IamSettings()
    run_service(create_app(settings), settings)


if __name__ == "__main__":
    main()
