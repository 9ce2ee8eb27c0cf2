"""``interlock run`` and ``interlock runs list|get|watch|cancel|pause|resume|retry``."""

from __future__ import annotations

import itertools
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from interlock.cli._context import client_for
from interlock.cli._output import (
    CliError,
    Column,
    Format,
    OutputOption,
    chosen,
    console,
    emit,
    print_data,
    say,
)
from interlock.cli._watch import EXIT_CODES, error_text, render_run, watch_run
from interlock.client import Client, Run

runs = typer.Typer(
    help="Runs: list, show, watch, cancel, pause, resume, retry.", no_args_is_help=True
)

RunArgument = Annotated[str, typer.Argument(help="The run's id.")]
ReasonOption = Annotated[str, typer.Option(help="Why, for the record.")]
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")

RUN_COLUMNS = [
    Column("run", lambda r: r.run_id, whole=True),
    Column("workflow", lambda r: r.workflow),
    Column("version", lambda r: r.version),
    Column("status", lambda r: r.status),
    Column("created", lambda r: r.created_at),
    Column("finished", lambda r: r.finished_at),
]


def parse_input(input_text: str | None, pairs: list[str]) -> Any:
    """The run's input from ``--input`` (JSON, or ``@file``) and ``-i key=value`` pairs.

    A pair's value is read as JSON when it is JSON (``-i n=3`` is a number), else as text.
    """
    value: Any = None
    if input_text is not None:
        text = input_text
        if input_text.startswith("@"):
            try:
                text = Path(input_text[1:]).read_text()
            except OSError as error:
                raise CliError(f"cannot read {input_text[1:]}: {error.strerror}") from error
        try:
            value = json.loads(text)
        except ValueError as error:
            raise CliError(f"--input is not JSON: {error}") from error
    if not pairs:
        return value
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise CliError("-i key=value needs --input to be a JSON object")
    for pair in pairs:
        key, equals, raw = pair.partition("=")
        if not equals or not key:
            raise CliError(f"-i {pair!r} is not key=value")
        try:
            value[key] = json.loads(raw)
        except ValueError:
            value[key] = raw
    return value


def parse_duration(text: str) -> timedelta | None:
    """``30s``, ``5m``, ``2h``, ``1d12h`` as a time span, or ``None`` if it is none."""
    match = _DURATION.match(text)
    if not text or not match:
        return None
    days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def parse_time(text: str, option: str) -> datetime:
    """An RFC 3339 time (naive means UTC)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as error:
        raise CliError(f"{option} {text!r} is not a duration (2h) or a time (RFC 3339)") from error
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``--since``: a duration back from now (``30m``, ``2h``, ``1d12h``) or an RFC 3339 time."""
    span = parse_duration(text)
    if span is not None:
        return (now or datetime.now(UTC)) - span
    return parse_time(text, "--since")


def finish_watch(client: Client, run_id: str, output: Format | None) -> None:
    """Watch the run until it ends, then exit with its outcome's code.

    With ``-o json`` or ``-o yaml`` the view goes to stderr, so stdout holds the data alone.
    """
    data_out = output is not None and output is not Format.TABLE
    final = watch_run(client, run_id, Console(stderr=True) if data_out else console)
    if data_out:
        assert output is not None
        print_data(final, output)
    raise typer.Exit(EXIT_CODES.get(final.status, 1))


def run(
    ctx: typer.Context,
    workflow: Annotated[str, typer.Argument(help="The workflow's name.")],
    input_text: Annotated[
        str | None,
        typer.Option("--input", help="The input as JSON, or @file.json to read it from a file."),
    ] = None,
    pairs: Annotated[
        list[str] | None,
        typer.Option(
            "-i", help="key=value added to the input (value as JSON if it is). Repeatable."
        ),
    ] = None,
    idempotency_key: Annotated[
        str | None,
        typer.Option(help="Starting again with the same key returns the first run. Default: new."),
    ] = None,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch", "-w", help="Follow the run live; exit 0 succeeded, 1 failed, 2 cancelled."
        ),
    ] = False,
    output: OutputOption = None,
) -> None:
    """Start a run of a workflow's latest version.

    With --watch, a live view (each task's status, attempts and duration, a progress
    bar) until the run ends, and the exit code says how: 0 succeeded, 1 failed,
    2 cancelled, 3 an API error; so it can gate a CI job.

    Example: interlock run nightly -i day=2026-12-05 --watch

    Example: interlock run nightly --input @input.json --idempotency-key deploy-42
    """
    value = parse_input(input_text, pairs or [])
    with client_for(ctx) as client:
        started = client.runs.start(workflow, value, idempotency_key=idempotency_key)
        if watch:
            finish_watch(client, started.run_id, output)
    if chosen(output) is Format.TABLE:
        say(f"Started run [bold]{started.run_id}[/] of {started.workflow} v{started.version}")
    else:
        emit(started, output, [])


@runs.command("list")
def list_runs(
    ctx: typer.Context,
    workflow: Annotated[str | None, typer.Option(help="Only this workflow's runs.")] = None,
    status: Annotated[
        str | None, typer.Option(help="pending, running, paused, succeeded, failed or cancelled.")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Created within (2h, 1d) or after a time (RFC 3339).")
    ] = None,
    limit: Annotated[int, typer.Option(help="Show at most this many.", min=1)] = 50,
    output: OutputOption = None,
) -> None:
    """Runs, newest first.

    Example: interlock runs list --workflow nightly --status failed --since 1d
    """
    created_after = parse_since(since) if since else None
    with client_for(ctx) as client:
        found = client.runs.list(
            workflow=workflow,
            status=status,
            created_after=created_after,
            page_size=min(limit, 100),
        )
        items = list(itertools.islice(found, limit))
    emit(items, output, RUN_COLUMNS)


@runs.command("get")
def get_run(ctx: typer.Context, run_id: RunArgument, output: OutputOption = None) -> None:
    """A run with its tasks as a table, and each failed task's error.

    Example: interlock runs get 0193a3c4-... -o json
    """
    with client_for(ctx) as client:
        found = client.runs.get(run_id)
    if chosen(output) is not Format.TABLE:
        emit(found, output, [])
        return
    console.print(render_run(found))
    _print_errors(found)


def _print_errors(found: Run) -> None:
    for task in found.tasks:
        if task.error and task.status != "succeeded":
            console.print(Text.assemble((task.id, "red"), ": ", error_text(task)), soft_wrap=True)


@runs.command("watch")
def watch(ctx: typer.Context, run_id: RunArgument, output: OutputOption = None) -> None:
    """Follow a run live until it ends; exit 0 succeeded, 1 failed, 2 cancelled.

    Example: interlock runs watch 0193a3c4-...
    """
    with client_for(ctx) as client:
        finish_watch(client, run_id, output)


def _control(action: str) -> Any:
    def command(
        ctx: typer.Context,
        run_id: RunArgument,
        reason: ReasonOption = "",
        output: OutputOption = None,
    ) -> None:
        with client_for(ctx) as client:
            changed = getattr(client.runs, action)(run_id, reason)
        if chosen(output) is Format.TABLE:
            say(f"run [bold]{changed.run_id}[/]: {action} asked; status {changed.status}")
        else:
            emit(changed, output, [])

    summaries = {
        "cancel": "Cancel a run: its running tasks are cancelled, nothing new starts.",
        "pause": "Pause a run: running tasks finish, nothing new starts until resume.",
        "resume": "Resume a paused run.",
        "retry": "Retry the failed tasks of a failed run.",
    }
    command.__doc__ = f"{summaries[action]}\n\nExample: interlock runs {action} 0193a3c4-..."
    command.__name__ = action
    return command


def register(app: typer.Typer) -> None:
    """Add these commands to ``app``."""
    app.command()(run)
    for action in ("cancel", "pause", "resume", "retry"):
        runs.command(action)(_control(action))
    app.add_typer(runs, name="runs")
