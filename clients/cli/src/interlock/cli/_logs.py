"""``interlock logs``: a run's task logs, read or followed live (the metadata service)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from interlock.cli._context import client_for
from interlock.cli._output import Format, OutputOption, chosen, console, print_data, short_time
from interlock.client import Client, LogLine

LEVEL_STYLES = {
    "debug": "dim",
    "info": "",
    "warning": "yellow",
    "error": "red",
    "critical": "bold red",
}


def line_text(line: LogLine) -> Text:
    """``09:12:03 INFO    extract#1  message``, the level coloured."""
    level = line.level.lower()
    return Text.assemble(
        (short_time(line.time)[11:], "dim"),
        " ",
        (f"{level.upper():<8}", LEVEL_STYLES.get(level, "")),
        (f"{line.task_id}#{line.attempt}", "cyan"),
        "  ",
        line.message,
    )


def _show(line: LogLine, output: Format) -> None:
    if output is Format.TABLE:
        console.print(line_text(line), soft_wrap=True)
    else:
        # One document per line, so a pipe can read them as they come.
        print_data(line, Format.JSON if output is Format.JSON else Format.YAML)


def _print_all(
    client: Client,
    run_id: str,
    task: str | None,
    attempt: int | None,
    tail: int | None,
    output: Format,
) -> str | None:
    """Print the log as it is now; returns the cursor after its last line."""
    cursor: str | None = None
    page = client.logs.read(run_id, task_id=task, attempt=attempt, tail=tail)
    while True:
        for line in page.lines:
            _show(line, output)
        cursor = page.next_cursor or cursor
        if tail is not None or page.end_of_log or not page.lines or not page.next_cursor:
            return cursor
        page = client.logs.read(run_id, task_id=task, attempt=attempt, after=cursor)


def logs(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="The run's id.")],
    task: Annotated[str | None, typer.Option("--task", help="One task's lines.")] = None,
    attempt: Annotated[int | None, typer.Option(help="One attempt's lines.", min=1)] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Follow new lines until the run ends.")
    ] = False,
    tail: Annotated[
        int | None, typer.Option(help="Start with the last N lines only.", min=0)
    ] = None,
    output: OutputOption = None,
) -> None:
    """A run's task logs, levels coloured; with -f, followed live until the run ends.

    Following reads the live stream and, when the connection breaks, resumes from the
    last line received, so no line is lost or shown twice.

    Example: interlock logs 0193a3c4-... -f --tail 20

    Example: interlock logs 0193a3c4-... --task extract --attempt 2
    """
    shown = chosen(output)
    with client_for(ctx) as client:
        if not follow:
            _print_all(client, run_id, task, attempt, tail, shown)
            return
        cursor = None
        if tail is not None:
            cursor = _print_all(client, run_id, task, attempt, tail, shown)
        for line in client.logs.stream(run_id, task_id=task, attempt=attempt, after=cursor):
            _show(line, shown)


def register(app: typer.Typer) -> None:
    """Add this command to ``app``."""
    app.command()(logs)
