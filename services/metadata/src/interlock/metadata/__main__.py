"""``python -m interlock.metadata``: run the metadata service."""

from __future__ import annotations

from interlock.common.runtime import run_service
from interlock.metadata.app import create_app
from interlock.metadata.settings import MetadataSettings


def main() -> None:
    """Read settings from the environment and serve until signalled."""
    settings = MetadataSettings()
    run_service(create_app(settings), settings)


if __name__ == "__main__":
    main()
