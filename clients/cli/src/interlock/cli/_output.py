"""How commands print: tables for people, JSON or YAML for programs, one line per error."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import typer
import yaml
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

console = Console(highlight=False)
"""Standard output (follows ``sys.stdout``, so tests can capture it)."""

STATUS_STYLES = {
    "pending": "dim",
    "scheduled": "cyan",
    "running": "blue",
    "paused": "yellow",
    "retrying": "yellow",
    "succeeded": "green",
    "failed": "red",
    "dead_lettered": "red",
    "cancelled": "magenta",
    "skipped": "dim",
}


class Format(StrEnum):
    """What a read command prints."""

    JSON = "json"
    YAML = "yaml"
    TABLE = "table"


OutputOption = Annotated[
    Format | None,
    typer.Option(
        "--output",
        "-o",
        help="json, yaml or table. Default: table on a terminal, json when piped.",
        case_sensitive=False,
    ),
]


class CliError(Exception):
    """A problem the CLI found itself (a file, an argument), shown as one line."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def chosen(fmt: Format | None) -> Format:
    """The format asked for, or the default for where stdout goes."""
    if fmt is not None:
        return fmt
    return Format.TABLE if sys.stdout.isatty() else Format.JSON


def plain(data: Any) -> Any:
    """``data`` as JSON-able values (models dumped, times as RFC 3339)."""
    if isinstance(data, BaseModel):
        return data.model_dump(mode="json")
    if isinstance(data, list | tuple):
        return [plain(item) for item in data]
    if isinstance(data, dict):
        return {key: plain(value) for key, value in data.items()}
    if isinstance(data, datetime):
        return data.isoformat()
    return data


def print_data(data: Any, fmt: Format) -> None:
    """Print ``data`` as JSON or YAML."""
    if fmt is Format.YAML:
        sys.stdout.write(yaml.safe_dump(plain(data), sort_keys=False, allow_unicode=True))
    else:
        sys.stdout.write(json.dumps(plain(data), indent=2, ensure_ascii=False) + "\n")


@dataclass(frozen=True)
class Column:
    """A table column: its header and how to read a cell from an item."""

    header: str
    cell: Callable[[Any], Any]
    whole: bool = False
    """Never wrapped nor cut (ids, which people copy). Default: wrapped to fit."""


def emit(data: Any, fmt: Format | None, columns: Sequence[Column]) -> None:
    """Print ``data`` (an item or a list) in the chosen format, as a table with ``columns``."""
    output = chosen(fmt)
    if output is not Format.TABLE:
        print_data(data, output)
        return
    items = data if isinstance(data, list) else [data]
    rows = [[cell_text(column.cell(item)) for column in columns] for item in items]
    table = Table(box=None, header_style="bold")
    for index, column in enumerate(columns):
        widest = max((len(row[index]) for row in rows), default=0)
        table.add_column(
            column.header, no_wrap=column.whole, min_width=widest if column.whole else None
        )
    for row in rows:
        table.add_row(*row)
    console.print(table)


def cell_text(value: Any) -> str:
    """A cell: times short and in UTC, nothing as ``-``, statuses coloured."""
    if value is None or value == "":
        return "-"
    if isinstance(value, datetime):
        return short_time(value)
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    text = str(value)
    style = STATUS_STYLES.get(text)
    return f"[{style}]{text}[/]" if style else text.replace("[", r"\[")


def short_time(value: datetime) -> str:
    """``2026-12-05 09:12:03`` (UTC)."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def say(message: str) -> None:
    """A line for people (Rich markup), on standard output."""
    console.print(message, soft_wrap=True)
