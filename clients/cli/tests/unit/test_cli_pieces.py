"""The CLI's pure parts: inputs, times, the error line, the watch view, stored logins."""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from interlock.cli._config import StoredLogin, load_login, save_login, session_file
from interlock.cli._output import CliError
from interlock.cli._runs import parse_input, parse_since
from interlock.cli._watch import render_run
from interlock.cli.app import app, error_line
from interlock.client import Run, Session
from interlock.client._errors import error_from_response


def test_input_merges_json_a_file_and_key_value_pairs(tmp_path) -> None:
    source = tmp_path / "input.json"
    source.write_text('{"day": "2026-12-05", "n": 1}')
    assert parse_input(f"@{source}", ["n=3", "name=nightly", "flags=[1, 2]"]) == {
        "day": "2026-12-05",
        "n": 3,
        "name": "nightly",
        "flags": [1, 2],
    }
    assert parse_input(None, []) is None
    assert parse_input("[1, 2]", []) == [1, 2]
    with pytest.raises(CliError, match="key=value"):
        parse_input(None, ["novalue"])
    with pytest.raises(CliError, match="JSON object"):
        parse_input("[1]", ["a=1"])


def test_since_reads_durations_back_from_now_and_times() -> None:
    now = datetime(2026, 12, 5, 12, tzinfo=UTC)
    assert parse_since("1d2h", now) == now - timedelta(days=1, hours=2)
    assert parse_since("2026-12-01T00:00:00Z", now) == datetime(2026, 12, 1, tzinfo=UTC)
    with pytest.raises(CliError):
        parse_since("yesterday", now)


def test_a_problem_is_one_line_with_its_fields_status_and_request_id() -> None:
    body = (
        b'{"type":"urn:interlock:problem:validation","title":"Invalid definition","status":422,'
        b'"detail":"2 problems\\nfound","request_id":"r-1",'
        b'"errors":[{"pointer":"/tasks/0/type","detail":"unknown type"}]}'
    )
    response = httpx.Response(422, content=body, request=httpx.Request("POST", "http://g/x"))
    line = error_line(error_from_response(response))
    assert line == (
        "Error: Invalid definition: 2 problems found (/tasks/0/type: unknown type) "
        "[HTTP 422, request r-1]"
    )
    assert "\n" not in line
    refused = httpx.Response(401, json={"title": "Unauthenticated"}, request=response.request)
    assert error_line(error_from_response(refused)) == (
        "Error: Unauthenticated [HTTP 401] Log in with `interlock login`, or set INTERLOCK_API_KEY."
    )


def test_the_watch_view_shows_each_task_and_the_progress() -> None:
    run = Run.model_validate(
        {
            "run_id": "r-1",
            "workflow": "nightly",
            "version": 2,
            "status": "running",
            "created_at": "2026-12-05T09:00:00.000Z",
            "tasks": [
                {
                    "id": "extract",
                    "status": "succeeded",
                    "attempts": 1,
                    "started_at": "2026-12-05T09:00:00.000Z",
                    "finished_at": "2026-12-05T09:00:01.250Z",
                },
                {
                    "id": "load",
                    "status": "retrying",
                    "attempts": 2,
                    "started_at": "2026-12-05T09:00:02.000Z",
                    "error": {"type": "Timeout", "message": "no answer in 5s"},
                },
                {"id": "report", "status": "pending", "attempts": 0},
            ],
        }
    )
    console = Console(
        record=True, width=100, force_terminal=True, color_system="truecolor", file=io.StringIO()
    )
    console.print(render_run(run, now=datetime(2026, 12, 5, 9, 1, 5, tzinfo=UTC)))
    text = console.export_text(clear=False)
    assert "nightly v2  run r-1  running" in text
    assert "extract  succeeded  1         1.2s" in text
    assert "load     retrying   2         1m03s     Timeout: no answer in 5s" in text
    assert "report   pending    0         -" in text
    assert "1/3 tasks finished" in text
    styled = console.export_text(styles=True)
    assert "\x1b[32msucceeded" in styled  # statuses are coloured on a terminal


def test_a_login_is_stored_for_its_owner_alone(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    session = Session("access", "ilr_refresh", 1_800_000_000.0)
    save_login(StoredLogin("http://gw:8080", "dana", "acme", session))
    mode = stat.S_IMODE(session_file().stat().st_mode)
    assert mode == 0o600
    assert stat.S_IMODE(session_file().parent.stat().st_mode) == 0o700
    assert load_login() == StoredLogin("http://gw:8080", "dana", "acme", session)
    assert json.loads(session_file().read_text())["refresh_token"] == "ilr_refresh"


def _commands(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    found = []
    for name, command in group.commands.items():
        path = (*prefix, name)
        if hasattr(command, "commands"):
            found += _commands(command, path)
        else:
            found.append((path, command))
    return found


def test_every_command_has_help_with_an_example() -> None:
    commands = _commands(typer.main.get_command(app))
    assert len(commands) > 40
    for path, command in commands:
        example = "Example: curl" if path == ("artifacts", "url") else "Example: interlock"
        assert f"{example} " in (command.help or ""), path
        if example.endswith("interlock"):
            assert f"{example} {' '.join(path)}" in command.help, path
    shown = CliRunner().invoke(app, ["runs", "list", "--help"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0
    assert "Example: interlock runs list --workflow nightly --status failed --since 1d" in (
        shown.output
    )


def test_the_installed_script_completes_commands_in_a_shell() -> None:
    script = Path(sys.executable).parent / "interlock"
    env = {**os.environ, "_INTERLOCK_COMPLETE": "complete_bash", "COMP_CWORD": "2"}
    env["COMP_WORDS"] = "interlock runs c"
    completed = subprocess.run(
        [str(script)], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert completed.stdout.split() == ["cancel"]
