"""Liveness for the local stack: restart a service whose ``/healthz`` fails (supervisord).

supervisord restarts a process that exits, but it asks no health endpoint. This
program runs as its event listener (``TICK_5``: every 5 s) and does what a
Kubernetes liveness probe does:

- a service in ``RUNNING`` whose ``/healthz`` answers 503 or not at all (a timeout:
  its event loop is stuck) ``FAILURES_TO_RESTART`` times in a row is restarted.
  Connection refused is not counted: the process is still starting (its lifespan
  opens its resources before it listens);
- a service in ``FATAL`` (it died at start-up a few times in a row, e.g. while its
  database was down) is started again every ``FATAL_RETRY_S``: supervision keeps
  trying, as an orchestrator does, instead of leaving it dead for good.

``/readyz`` is never a reason: a dependency that is down does not get better when
its clients restart.

Run as ``python -m interlock.devstack._watchdog NAME=URL ...`` by supervisord.
"""

from __future__ import annotations

import http.client
import os
import sys
import time
import urllib.error
import urllib.request
from typing import Any, TextIO

from supervisor import childutils

FAILURES_TO_RESTART = 3
"""Consecutive failed probes (5 s apart) before a restart."""
PROBE_TIMEOUT_S = 3.0
"""How long one ``/healthz`` may take."""
FATAL_RETRY_S = 15.0
"""Least time between two starts of a program left in ``FATAL``."""


class Watchdog:
    """Probes each service once per tick and restarts the ones that fail.

    Args:
        targets: ``/healthz`` URL of each supervisord program name.
        rpc: supervisord's XML-RPC interface (``supervisor.*`` namespace).
        log: Where decisions are written (supervisord keeps the file).
    """

    def __init__(self, targets: dict[str, str], rpc: Any, log: TextIO) -> None:
        self._targets = targets
        self._rpc = rpc
        self._log = log
        self._failures = dict.fromkeys(targets, 0)
        self._fatal_retry_at: dict[str, float] = {}

    def tick(self) -> None:
        """Probe every service and act on what the probes and supervisord say."""
        states = {
            info["name"]: info["statename"] for info in self._rpc.supervisor.getAllProcessInfo()
        }
        for name, url in self._targets.items():
            state = states.get(name)
            if state == "FATAL":
                self._retry_fatal(name)
            elif state == "RUNNING":
                self._probe(name, url)
            else:
                self._failures[name] = 0

    def _probe(self, name: str, url: str) -> None:
        problem = probe_liveness(url)
        if problem is None:
            self._failures[name] = 0
            return
        self._failures[name] += 1
        self._say(f"{name}: /healthz failed ({problem}), {self._failures[name]} in a row")
        if self._failures[name] >= FAILURES_TO_RESTART:
            self._failures[name] = 0
            self._say(f"{name}: restarting")
            self._rpc.supervisor.stopProcess(name, True)
            self._rpc.supervisor.startProcess(name, False)

    def _retry_fatal(self, name: str) -> None:
        now = time.monotonic()
        if now < self._fatal_retry_at.get(name, 0.0):
            return
        self._fatal_retry_at[name] = now + FATAL_RETRY_S
        self._say(f"{name}: FATAL, starting it again")
        self._rpc.supervisor.startProcess(name, False)

    def _say(self, line: str) -> None:
        self._log.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} watchdog {line}\n")
        self._log.flush()


def probe_liveness(url: str, *, timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
    """``None`` when ``url`` answers 200 (or refuses: not listening yet), else why not."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - loopback URLs we built
            response.read()
    except urllib.error.HTTPError as error:
        return f"HTTP {error.code}"
    except ConnectionRefusedError:
        return None
    except urllib.error.URLError as error:
        if isinstance(error.reason, ConnectionRefusedError):
            return None
        return str(error.reason)
    except (TimeoutError, http.client.HTTPException, OSError) as error:
        return type(error).__name__
    return None


def main(argv: list[str]) -> None:
    """Serve supervisord's event listener protocol forever."""
    targets = dict(arg.split("=", 1) for arg in argv)
    watchdog = Watchdog(targets, childutils.getRPCInterface(os.environ), sys.stderr)
    while True:
        headers, _ = childutils.listener.wait(sys.stdin, sys.stdout)
        try:
            if headers["eventname"].startswith("TICK"):
                watchdog.tick()
        except Exception as error:  # never die: a dead listener watches nothing
            sys.stderr.write(f"watchdog tick failed: {error!r}\n")
            sys.stderr.flush()
        childutils.listener.ok(sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:])
