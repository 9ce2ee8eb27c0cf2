"""``python -m interlock.artifact``: run the artifact service."""

from __future__ import annotations

from interlock.artifact.app import create_app
from interlock.artifact.settings import ArtifactSettings
from interlock.common.runtime import run_service


def main() -> None:
    """Read settings from the environment and serve until signalled."""
    settings = ArtifactSettings()
    run_service(create_app(settings), settings)


if __name__ == "__main__":
    main()
