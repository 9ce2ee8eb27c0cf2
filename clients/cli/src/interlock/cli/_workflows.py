"""``interlock apply`` and ``interlock workflows list|get|versions|archive``."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from interlock.cli._context import client_for
from interlock.cli._output import CliError, Column, Format, OutputOption, chosen, emit, say
from interlock.client import Client, NotFound, Workflow

workflows = typer.Typer(
    help="Workflow definitions: list, show, versions, archive.", no_args_is_help=True
)

WORKFLOW_COLUMNS = [
    Column("name", lambda w: w.name),
    Column("version", lambda w: w.latest_version),
    Column("description", lambda w: w.description),
    Column("labels", lambda w: [f"{k}={v}" for k, v in w.labels.items()]),
    Column("updated", lambda w: w.version_created_at),
    Column("archived", lambda w: "yes" if w.archived else ""),
]

LimitOption = Annotated[int, typer.Option(help="Show at most this many.", min=1)]


def _read_definition(path: str) -> tuple[str, bytes]:
    """The workflow's name and the file's bytes (``-``: standard input)."""
    try:
        content = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as error:
        raise CliError(f"cannot read {path}: {error.strerror}") from error
    try:
        document = yaml.safe_load(content)
    except yaml.YAMLError as error:
        raise CliError(f"{path} is not YAML or JSON: {error}".splitlines()[0]) from error
    if not isinstance(document, dict) or not isinstance(document.get("name"), str):
        raise CliError(f"{path} has no workflow name (a top-level `name:`)")
    return document["name"], content


def apply_definition(client: Client, name: str, content: bytes) -> tuple[str, Workflow]:
    """Create the workflow, or store a new version when it changed.

    Returns:
        ``created``, ``new version`` or ``unchanged``, and the workflow as stored.
    """
    try:
        before = client.workflows.get(name)
    except NotFound:
        return "created", client.workflows.create(content)
    after = client.workflows.put(name, content)
    return ("unchanged" if after.version == before.latest_version else "new version"), after


def apply(
    ctx: typer.Context,
    files: Annotated[
        list[str],
        typer.Option(
            "--file", "-f", help="A YAML or JSON definition; `-` reads stdin. Repeatable."
        ),
    ],
    output: OutputOption = None,
) -> None:
    """Create each workflow, or make a new version when its definition changed; say which.

    Example: interlock apply -f workflow.yaml
    """
    results: list[dict[str, Any]] = []
    with client_for(ctx) as client:
        for path in files:
            name, content = _read_definition(path)
            action, workflow = apply_definition(client, name, content)
            results.append({"name": name, "action": action, "version": workflow.version})
            if chosen(output) is Format.TABLE:
                version = f"version {workflow.version}"
                detail = (
                    f"unchanged ({version})" if action == "unchanged" else f"{action}: {version}"
                )
                say(f"workflow [bold]{name}[/] {detail}")
    if chosen(output) is not Format.TABLE:
        emit(results, output, [])


@workflows.command("list")
def list_workflows(
    ctx: typer.Context,
    prefix: Annotated[str | None, typer.Option(help="Only names starting with it.")] = None,
    label: Annotated[
        list[str] | None, typer.Option(help="key=value; repeat for all of them.")
    ] = None,
    archived: Annotated[bool, typer.Option(help="Archived ones too.")] = False,
    limit: LimitOption = 100,
    output: OutputOption = None,
) -> None:
    """The latest version of each workflow, by name.

    Example: interlock workflows list --label team=data
    """
    labels = dict(_key_value(item, "--label") for item in label or [])
    with client_for(ctx) as client:
        found = client.workflows.list(
            name_prefix=prefix, labels=labels, include_archived=archived, page_size=min(limit, 100)
        )
        items = list(itertools.islice(found, limit))
    emit(items, output, WORKFLOW_COLUMNS)


@workflows.command("get")
def get_workflow(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The workflow's name.")],
    version: Annotated[int | None, typer.Option(help="Default: the latest.", min=1)] = None,
    output: OutputOption = None,
) -> None:
    """A workflow's version, with its definition.

    Example: interlock workflows get nightly --version 2 -o yaml
    """
    with client_for(ctx) as client:
        workflow = client.workflows.get(name, version)
    if chosen(output) is not Format.TABLE:
        emit(workflow, output, [])
        return
    columns = [WORKFLOW_COLUMNS[0], Column("version", lambda w: w.version), *WORKFLOW_COLUMNS[2:]]
    emit(workflow, output, columns)
    say("")
    sys.stdout.write(yaml.safe_dump(workflow.definition, sort_keys=False))


@workflows.command("versions")
def versions(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The workflow's name.")],
    output: OutputOption = None,
) -> None:
    """Every version of a workflow, oldest first.

    Example: interlock workflows versions nightly
    """
    with client_for(ctx) as client:
        items = list(client.workflows.versions(name))
    emit(
        items,
        output,
        [
            Column("version", lambda w: w.version),
            Column("created", lambda w: w.version_created_at),
            Column("by", lambda w: w.version_created_by),
            Column("hash", lambda w: w.content_hash[:12]),
        ],
    )


@workflows.command("archive")
def archive(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="The workflow's name.")]
) -> None:
    """Archive a workflow: no new runs, hidden from lists; its versions and runs stay.

    Example: interlock workflows archive nightly
    """
    with client_for(ctx) as client:
        client.workflows.archive(name)
    say(f"workflow [bold]{name}[/] archived")


def _key_value(text: str, option: str) -> tuple[str, Any]:
    key, equals, value = text.partition("=")
    if not equals or not key:
        raise CliError(f"{option} {text!r} is not key=value")
    return key, value


def register(app: typer.Typer) -> None:
    """Add these commands to ``app``."""
    app.command()(apply)
    app.add_typer(workflows, name="workflows")
