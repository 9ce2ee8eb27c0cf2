"""``python -m bench.temporal_worker ADDRESS TASK_QUEUE``: the Temporal side's worker process.

A process of its own so its CPU time is measured apart from the load generator.
Prints ``ready`` once it polls, and runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import signal
import sys

from temporalio.client import Client
from temporalio.worker import Worker

from bench.temporal_workflows import ACTIVITIES, WORKFLOWS


async def serve(address: str, task_queue: str) -> None:
    """Poll ``task_queue`` on the server at ``address`` until a stop signal."""
    client = await Client.connect(address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with Worker(client, task_queue=task_queue, workflows=WORKFLOWS, activities=ACTIVITIES):
        print("ready", flush=True)  # noqa: T201 - the parent waits for this line
        await stop.wait()


def main() -> int:
    """Entry point; returns the exit code."""
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)  # noqa: T201
        return 2
    asyncio.run(serve(sys.argv[1], sys.argv[2]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
