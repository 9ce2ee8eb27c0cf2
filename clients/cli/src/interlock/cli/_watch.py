"""The live view of a run: each task's status, attempts and duration, and a progress bar."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from interlock.cli._output import STATUS_STYLES
from interlock.client import Client, Run, TaskView

FINISHED_TASK = frozenset({"succeeded", "failed", "dead_lettered", "cancelled", "skipped"})
"""Task statuses counted as finished by the progress bar."""
EXIT_CODES = {"succeeded": 0, "failed": 1, "cancelled": 2}
"""What ``interlock run --watch`` exits with for each way a run ends."""
API_ERROR_EXIT = 3
"""Exit code of any command the API answered with an error, or that could not reach it."""
POLL_INTERVAL_S = 0.5
"""How often the view reads the run. Default of :func:`watch_run`."""


def duration_text(task: TaskView, now: datetime) -> str:
    """How long the task ran (so far, while it runs): ``850ms``, ``12.3s``, ``4m05s``."""
    if task.started_at is None:
        return "-"
    seconds = ((task.finished_at or now) - task.started_at).total_seconds()
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s"


def status_text(status: str) -> Text:
    """A status, coloured."""
    return Text(status, style=STATUS_STYLES.get(status, ""))


def error_text(task: TaskView) -> str:
    """A task's latest error on one line, or empty."""
    if not task.error:
        return ""
    kind, message = task.error.get("type", "error"), task.error.get("message", "")
    return " ".join(f"{kind}: {message}".split())


def render_run(run: Run, now: datetime | None = None) -> RenderableType:
    """The view of ``run``: a title line, the tasks' table and the progress bar."""
    moment = now or datetime.now(UTC)
    title = Text.assemble(
        (f"{run.workflow} v{run.version}", "bold"), f"  run {run.run_id}  ", status_text(run.status)
    )
    table = Table("task", "status", "attempts", "duration", "error", box=None, header_style="bold")
    for task in run.tasks:
        table.add_row(
            task.id,
            status_text(task.status),
            str(task.attempts),
            duration_text(task, moment),
            Text(error_text(task), style="red"),
        )
    finished = sum(1 for task in run.tasks if task.status in FINISHED_TASK)
    total = len(run.tasks)
    bar = Table.grid(padding=(0, 1))
    bar.add_row(
        ProgressBar(total=max(total, 1), completed=finished, width=40),
        Text(f"{finished}/{total} tasks finished"),
    )
    return Group(title, table, bar)


def watch_run(
    client: Client, run_id: str, console: Console, poll_interval_s: float = POLL_INTERVAL_S
) -> Run:
    """Show the run live until it ends; returns it as it ended.

    Args:
        client: The client to read the run with.
        run_id: The run.
        console: Where to draw (a terminal animates; anything else gets the last view).
        poll_interval_s: Time between reads of the run. Default: 0.5 s.
    """
    run = client.runs.get(run_id)
    with Live(render_run(run), console=console, refresh_per_second=8) as live:
        while not run.ended:
            time.sleep(poll_interval_s)
            run = client.runs.get(run_id)
            live.update(render_run(run))
    if not console.is_terminal:
        console.line()  # Live leaves its last view without one where it cannot redraw
    return run
