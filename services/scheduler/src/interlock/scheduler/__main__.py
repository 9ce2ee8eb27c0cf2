"""``python -m interlock.scheduler``: run the scheduler service."""

from __future__ import annotations

import gc

from interlock.common.runtime import run_service
from interlock.scheduler.app import create_app
from interlock.scheduler.settings import SchedulerSettings


def main() -> None:
    """Read settings from the environment and serve until signalled."""
    settings = SchedulerSettings()
    app = create_app(settings)
    # The ~80k objects the imports created live as long as the process: frozen, they are
    # no longer traversed by every full collection (~20 ms each, a pause in the consumer's
    # event loop), which the runs kept in memory trigger now and then.
    gc.freeze()
    run_service(app, settings)


if __name__ == "__main__":
    main()
