"""``python -m bench.temporal_worker ADDRESS TASK_QUEUE [OPTIONS_JSON]``: Temporal's worker.

A process of its own so its CPU time is measured apart from the load generator.
``OPTIONS_JSON`` is an object of ``temporalio.worker.Worker`` keyword arguments (pollers,
concurrency) for the setup being measured. Prints ``ready`` once it polls, and runs until
SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys

from temporalio.client import Client
from temporalio.worker import Worker

from bench.temporal_workflows import ACTIVITIES, WORKFLOWS


async def serve(address: str, task_queue: str, options: dict[str, int]) -> None:
    """Poll ``task_queue`` on the server at ``address`` until a stop signal."""
    client = await Client.connect(address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=ACTIVITIES,
        **options,  # type: ignore[arg-type]
    ):
        print("ready", flush=True)  # noqa: T201 - the parent waits for this line
        await stop.wait()


def main() -> int:
    """Entry point; returns the exit code."""
    if len(sys.argv) not in (3, 4):
        print(__doc__, file=sys.stderr)  # noqa: T201
        return 2
    options = json.loads(sys.argv[3]) if len(sys.argv) == 4 else {}
    asyncio.run(serve(sys.argv[1], sys.argv[2], options))
    return 0


if __name__ == "__main__":
    sys.exit(main())
