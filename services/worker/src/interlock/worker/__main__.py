"""``python -m interlock.worker``: run the worker service."""

from __future__ import annotations

from interlock.common.runtime import run_service
from interlock.worker.app import create_app
from interlock.worker.settings import WorkerSettings


def main() -> None:
    """Read settings from the environment and serve until signalled."""
    settings = WorkerSettings()
    run_service(create_app(settings), settings)


if __name__ == "__main__":
    main()
