"""``interlock artifacts list|get|put|url`` (the artifact service)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Annotated

import typer

from interlock.cli._context import client_for
from interlock.cli._output import CliError, Column, Format, OutputOption, chosen, emit, say

artifacts = typer.Typer(
    help="Files that runs produced: list, download, upload, share.", no_args_is_help=True
)

ArtifactArgument = Annotated[str, typer.Argument(help="The artifact's id.")]


@artifacts.command("list")
def list_artifacts(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="The run's id.")],
    task: Annotated[str | None, typer.Option(help="Only this task's.")] = None,
    prefix: Annotated[str | None, typer.Option(help="Only names starting with it.")] = None,
    limit: Annotated[int, typer.Option(help="Show at most this many.", min=1)] = 100,
    output: OutputOption = None,
) -> None:
    """A run's artifacts.

    Example: interlock artifacts list 0193a3c4-...
    """
    with client_for(ctx) as client:
        found = client.artifacts.list(
            run_id=run_id, task_id=task, name_prefix=prefix, page_size=min(limit, 100)
        )
        items = list(itertools.islice(found, limit))
    emit(
        items,
        output,
        [
            Column("id", lambda a: a.artifact_id, whole=True),
            Column("name", lambda a: a.name),
            Column("task", lambda a: a.task_id),
            Column("size", lambda a: a.size_bytes),
            Column("type", lambda a: a.content_type),
            Column("state", lambda a: a.state),
            Column("created", lambda a: a.created_at),
        ],
    )


@artifacts.command("get")
def get(
    ctx: typer.Context,
    artifact_id: ArtifactArgument,
    file: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Where to write it. Default: its name, here."),
    ] = None,
) -> None:
    """Download an artifact, streamed to a file.

    Example: interlock artifacts get 5d1c... -o report.csv
    """
    with client_for(ctx) as client:
        target = file or Path(Path(client.artifacts.get(artifact_id).name).name)
        if target.exists() and target.is_dir():
            raise CliError(f"{target} is a folder")
        client.artifacts.download(artifact_id, target)
    say(f"wrote {target}")


@artifacts.command("put")
def put(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="The run's id.")],
    file: Annotated[Path, typer.Argument(help="The file to upload.", exists=True, dir_okay=False)],
    name: Annotated[
        str | None, typer.Option(help="Its name in the run. Default: the file's.")
    ] = None,
    task: Annotated[str | None, typer.Option(help="The task it belongs to.")] = None,
    output: OutputOption = None,
) -> None:
    """Upload a file to a run, streamed; the server checks its SHA-256.

    Example: interlock artifacts put 0193a3c4-... report.csv --task export
    """
    with client_for(ctx) as client:
        artifact = client.artifacts.upload(run_id, file, name=name, task_id=task)
    if chosen(output) is Format.TABLE:
        say(f"uploaded {artifact.name} as {artifact.artifact_id}")
    else:
        emit(artifact, output, [])


@artifacts.command("url")
def url(
    ctx: typer.Context,
    artifact_id: ArtifactArgument,
    expires_in: Annotated[
        int, typer.Option(help="Seconds the URL works (at most 7 days).", min=1)
    ] = 300,
) -> None:
    """A pre-signed URL that downloads the artifact without credentials until it expires.

    Example: curl -fsSLo report.csv "$(interlock artifacts url 5d1c... --expires-in 3600)"
    """
    with client_for(ctx) as client:
        presigned = client.artifacts.url(artifact_id, expires_in)
    typer.echo(presigned.url)


def register(app: typer.Typer) -> None:
    """Add these commands to ``app``."""
    app.add_typer(artifacts, name="artifacts")
