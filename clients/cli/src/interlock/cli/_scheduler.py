"""``interlock dlq list|replay|discard`` and ``interlock timers move|cancel``."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Annotated

import typer

from interlock.cli._context import client_for
from interlock.cli._output import CliError, Column, Format, OutputOption, chosen, emit, say
from interlock.cli._runs import parse_duration, parse_time

dlq = typer.Typer(help="Dead letters: tasks that used up their retries.", no_args_is_help=True)
timers = typer.Typer(help="Pending delays of tasks: move or cancel them.", no_args_is_help=True)

DeadLetterArgument = Annotated[str, typer.Argument(help="The dead letter's id.")]
RunArgument = Annotated[str, typer.Argument(help="The run's id.")]
TaskArgument = Annotated[str, typer.Argument(help="The task's id in the run.")]


@dlq.command("list")
def list_dead_letters(
    ctx: typer.Context,
    run: Annotated[str | None, typer.Option(help="Only this run's.")] = None,
    task: Annotated[str | None, typer.Option(help="Only this task id's.")] = None,
    task_type: Annotated[str | None, typer.Option(help="Only tasks of this type.")] = None,
    error_type: Annotated[str | None, typer.Option(help="Only this error type.")] = None,
    limit: Annotated[int, typer.Option(help="Show at most this many.", min=1)] = 50,
    output: OutputOption = None,
) -> None:
    """Dead letters, newest first.

    Example: interlock dlq list --error-type TimeoutError
    """
    with client_for(ctx) as client:
        found = client.dead_letters.list(
            run_id=run,
            task_id=task,
            task_type=task_type,
            error_type=error_type,
            page_size=min(limit, 100),
        )
        items = list(itertools.islice(found, limit))
    emit(
        items,
        output,
        [
            Column("id", lambda d: d.id, whole=True),
            Column("run", lambda d: d.run_id, whole=True),
            Column("task", lambda d: d.task_id),
            Column("type", lambda d: d.task_type),
            Column("attempts", lambda d: d.attempts),
            Column("error", lambda d: f"{d.error_type}: {d.error_message}"[:100]),
            Column("created", lambda d: d.created_at),
        ],
    )


@dlq.command("replay")
def replay(ctx: typer.Context, dead_letter_id: DeadLetterArgument) -> None:
    """Run the task again with a fresh retry budget and resume its run.

    Example: interlock dlq replay 7f3e...
    """
    with client_for(ctx) as client:
        replayed = client.dead_letters.replay(dead_letter_id)
    say(f"task {replayed.task_id} of run {replayed.run_id}: attempt {replayed.attempt} scheduled")


@dlq.command("discard")
def discard(ctx: typer.Context, dead_letter_id: DeadLetterArgument) -> None:
    """Discard a dead letter (the task stays dead-lettered in its run).

    Example: interlock dlq discard 7f3e...
    """
    with client_for(ctx) as client:
        client.dead_letters.discard(dead_letter_id)
    say(f"dead letter {dead_letter_id} discarded")


@timers.command("move")
def move(
    ctx: typer.Context,
    run_id: RunArgument,
    task_id: TaskArgument,
    at: Annotated[str | None, typer.Option(help="When it fires (RFC 3339).")] = None,
    in_: Annotated[
        str | None, typer.Option("--in", help="When it fires, from now (30s, 5m, 2h); 0s: now.")
    ] = None,
    output: OutputOption = None,
) -> None:
    """Move a pending delay to another time (in the past: it fires at once).

    Example: interlock timers move 0193a3c4-... wait --in 0s
    """
    if (at is None) == (in_ is None):
        raise CliError("give one of --at and --in")
    if at is not None:
        due = parse_time(at, "--at")
    else:
        span = parse_duration(in_ or "")
        if span is None:
            raise CliError(f"--in {in_!r} is not a duration such as 30s, 5m or 2h")
        due = datetime.now(UTC) + span
    with client_for(ctx) as client:
        timer = client.timers.move(run_id, task_id, due)
    if chosen(output) is Format.TABLE:
        say(f"timer of {task_id} now due at {timer.due_at.isoformat()}")
    else:
        emit(timer, output, [])


@timers.command("cancel")
def cancel(ctx: typer.Context, run_id: RunArgument, task_id: TaskArgument) -> None:
    """Cancel a pending delay: the task is skipped and the run goes on.

    Example: interlock timers cancel 0193a3c4-... wait
    """
    with client_for(ctx) as client:
        client.timers.cancel(run_id, task_id)
    say(f"timer of {task_id} cancelled")


def register(app: typer.Typer) -> None:
    """Add these commands to ``app``."""
    app.add_typer(dlq, name="dlq")
    app.add_typer(timers, name="timers")
