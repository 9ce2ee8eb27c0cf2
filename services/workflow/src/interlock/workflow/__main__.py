"""``python -m interlock.workflow``: run the workflow service."""

from __future__ import annotations

from interlock.common.runtime import run_service
from interlock.workflow.app import create_app
from interlock.workflow.settings import WorkflowSettings


def main() -> None:
    """Read settings from the environment and serve until signalled."""
    settings = WorkflowSettings()
    run_service(create_app(settings), settings)


if __name__ == "__main__":
    main()
