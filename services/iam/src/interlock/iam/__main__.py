"""``python -m interlock.iam``: run the iam service.

``python -m interlock.iam recover-user USER``: see :mod:`interlock.iam.recovery`.
"""

from __future__ import annotations

import sys

from interlock.common.runtime import run_service
from interlock.iam.app import create_app
from interlock.iam.settings import IamSettings


def main() -> None:
    """Read settings from the environment and serve until signalled (or recover a user)."""
    if sys.argv[1:2] == ["recover-user"]:
        from interlock.iam.recovery import recover_user_main  # only this command needs it

        sys.exit(recover_user_main(sys.argv[2:]))
    settings = IamSettings()
    run_service(create_app(settings), settings)


if __name__ == "__main__":
    main()
