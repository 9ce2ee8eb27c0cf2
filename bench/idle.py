"""``python -m bench.idle``: the CPU each program of a freshly started, idle stack uses.

A stack doing nothing still pays for every consumer's broker polls, every loop's
wake-ups and every reconciler's passes: a cost per second that weighs on each task in
inverse proportion to throughput (docs/architecture.md, "Where the CPU goes"). This
starts a fresh stack, lets it settle, then samples each process's CPU time for a while
and prints the share of one core each program used, largest first::

    .venv/bin/python -m bench.idle --seconds 60 --port-offset 4600
    .venv/bin/python -m bench.idle --env INTERLOCK_CONSUMER_FETCH_MAX_WAIT_MS=5  # a setting

With ``--profile DIR``, each service process is then profiled idle for as long again
(``py-spy record --format speedscope``, one file per program in ``DIR``). The figures
of a loaded machine are indicative only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
from pathlib import Path

import psutil

from bench.cpu import CpuMeter, program_name
from bench.interlock_stack import BenchStack

SETTLE_S = 20.0
"""Wait after start-up before measuring: groups join, start-up passes end."""
SERVICES = ("iam", "workflow", "scheduler", "worker", "metadata", "notification", "artifact")
"""The programs ``--profile`` records."""


async def measure(
    seconds: float, *, port_offset: int | None, env: dict[str, str], profile: Path | None
) -> None:
    """Start a stack, print its idle CPU by program, optionally profile it, stop it."""
    stack = BenchStack(port_offset=port_offset, env=env)
    try:
        await stack.up()
        await asyncio.sleep(SETTLE_S)
        meter = CpuMeter(stack.pids)
        await meter.start()
        await asyncio.sleep(seconds)
        total = await meter.stop()
        shares = {
            program: round(100 * used / seconds, 1) for program, used in meter.by_program().items()
        }
        report = {"seconds": seconds, "percent_of_a_core": shares}
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
        sys.stdout.write(f"total: {100 * total / seconds:.1f}% of a core\n")
        if profile is not None:
            await _profile(stack, seconds, profile)
    finally:
        await stack.down()


async def _profile(stack: BenchStack, seconds: float, folder: Path) -> None:
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    recorders = []
    for pid in stack.pids():
        try:
            program = program_name(psutil.Process(pid))
        except psutil.NoSuchProcess:
            continue
        if program not in SERVICES:
            continue
        recorders.append(
            await asyncio.create_subprocess_exec(
                py_spy,
                "record",
                "--nonblocking",
                "--format",
                "speedscope",
                "--duration",
                str(round(seconds)),
                "--output",
                str(folder / f"{program}-{pid}.speedscope.json"),
                "--pid",
                str(pid),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
        )
    for recorder in recorders:
        await recorder.wait()
    sys.stdout.write(f"profiles in {folder}\n")


def main() -> None:
    """Parse the command line and measure."""
    parser = argparse.ArgumentParser(prog="python -m bench.idle", description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0, help="measuring time (60)")
    parser.add_argument("--port-offset", type=int, default=None, help="the stack's port offset")
    parser.add_argument("--profile", type=Path, default=None, help="py-spy the services into")
    parser.add_argument(
        "--env", action="append", default=[], help="NAME=VALUE for every process (repeatable)"
    )
    args = parser.parse_args()
    env = dict(item.split("=", 1) for item in args.env)
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    asyncio.run(measure(args.seconds, port_offset=args.port_offset, env=env, profile=args.profile))


if __name__ == "__main__":
    main()
