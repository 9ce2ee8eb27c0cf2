"""The ``interlock`` command against the real platform, as a user and a CI job use it."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar, TypeVar

import httpx
import pytest
from rich.console import Console
from standardwebhooks import Webhook
from typer.testing import CliRunner

from interlock.cli._watch import watch_run
from interlock.cli.app import app
from interlock.client import Client

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

SUFFIX = uuid.uuid4().hex[:6]
GOOD = f"""name: cli-good-{SUFFIX}
tasks:
  - id: extract
    type: noop
  - id: wait
    type: sleep
    params: {{duration: 300ms}}
    depends_on: [extract]
  - id: load
    type: noop
    depends_on: [extract]
"""
BAD = f"""name: cli-bad-{SUFFIX}
tasks:
  - id: extract
    type: noop
  - id: boom
    type: fail
    params: {{message: "it broke on purpose", retryable: false}}
    depends_on: [extract]
"""
DELAYED = f"""name: cli-delayed-{SUFFIX}
tasks:
  - id: wait
    type: delay
    params: {{duration: 2d}}
  - id: after
    type: noop
    depends_on: [wait]
"""
ECHO = f"""name: cli-echo-{SUFFIX}
tasks:
  - id: say
    type: echo
    params: {{lines: [one, two, three], interval: 100ms}}
"""


class Cli:
    """Runs commands as one user in one shell: own config folder, the stack's gateway."""

    def __init__(self, gateway: str, config_home: Path) -> None:
        self.env: dict[str, str | None] = {
            "XDG_CONFIG_HOME": str(config_home),
            "INTERLOCK_GATEWAY": gateway,
            "INTERLOCK_API_KEY": None,
        }
        self.runner = CliRunner()

    def __call__(self, *args: str, stdin: str | None = None):
        return self.runner.invoke(app, list(args), input=stdin, env=self.env)


@pytest.fixture(scope="module")
def cli(platform, tmp_path_factory) -> Cli:
    shell = Cli(platform.gateway, tmp_path_factory.mktemp("config"))
    # The password is asked for; CliRunner answers the prompt.
    result = shell("login", "--username", platform.username, stdin=f"{platform.password}\n")
    assert result.exit_code == 0, result.output
    assert platform.password not in result.output
    return shell


@pytest.fixture(scope="module")
def definitions(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("workflows")
    paths = {}
    for name, text in {"good": GOOD, "bad": BAD, "delayed": DELAYED, "echo": ECHO}.items():
        paths[name] = folder / f"{name}.yaml"
        paths[name].write_text(text)
    return paths


def test_login_keeps_the_session_for_the_user_alone(cli) -> None:
    session = Path(cli.env["XDG_CONFIG_HOME"] or "") / "interlock" / "session.json"
    assert stat.S_IMODE(session.stat().st_mode) == 0o600
    whoami = cli("whoami", "-o", "json")
    assert whoami.exit_code == 0, whoami.output
    assert json.loads(whoami.stdout)["roles"] == ["admin"]


def test_apply_creates_then_says_unchanged_then_makes_a_new_version(cli, definitions) -> None:
    created = cli("apply", "-f", str(definitions["good"]), "-f", str(definitions["bad"]))
    assert created.exit_code == 0, created.output
    assert [item["action"] for item in json.loads(created.stdout)] == ["created", "created"]

    again = cli("apply", "-f", str(definitions["good"]), "-o", "table")
    assert again.exit_code == 0, again.output
    assert f"workflow cli-good-{SUFFIX} unchanged (version 1)" in again.stdout

    changed = definitions["good"].parent / "changed.yaml"
    changed.write_text(GOOD.replace("300ms", "200ms"))
    newer = cli("apply", "-f", str(changed), "-o", "yaml")
    assert newer.exit_code == 0, newer.output
    assert "action: new version" in newer.stdout and "version: 2" in newer.stdout


def test_run_watch_exits_0_when_the_run_succeeds_and_1_when_it_fails(cli, definitions) -> None:
    cli("apply", "-f", str(definitions["good"]), "-f", str(definitions["bad"]))
    good = cli("run", f"cli-good-{SUFFIX}", "-i", "day=2026-12-05", "--watch")
    assert good.exit_code == 0, good.output
    assert "3/3 tasks finished" in good.stdout
    bad = cli("run", f"cli-bad-{SUFFIX}", "--watch", "-o", "json")
    assert bad.exit_code == 1, bad.output
    final = json.loads(bad.stdout)  # the live view went to stderr
    assert final["status"] == "failed"
    boom = next(task for task in final["tasks"] if task["id"] == "boom")
    assert boom["error"]["message"] == "it broke on purpose"


def test_runs_get_shows_the_tasks_and_their_errors_and_json_parses(cli, definitions) -> None:
    cli("apply", "-f", str(definitions["bad"]))
    started = cli("run", f"cli-bad-{SUFFIX}", "-o", "json")
    run_id = json.loads(started.stdout)["run_id"]
    cli("runs", "watch", run_id)

    table = cli("runs", "get", run_id, "-o", "table")
    assert table.exit_code == 0, table.output
    assert "boom: IntentionalFailure: it broke on purpose" in table.stdout
    parsed = json.loads(cli("runs", "get", run_id).stdout)
    assert parsed["run_id"] == run_id
    assert {task["id"]: task["status"] for task in parsed["tasks"]} == {
        "extract": "succeeded",
        "boom": "dead_lettered",
    }
    listed = json.loads(cli("runs", "list", "--workflow", f"cli-bad-{SUFFIX}").stdout)
    assert run_id in [item["run_id"] for item in listed]
    letters = json.loads(cli("dlq", "list", "--run", run_id).stdout)
    assert [letter["task_id"] for letter in letters] == ["boom"]


def test_timers_move_and_cancel_a_pending_delay(cli, definitions) -> None:
    cli("apply", "-f", str(definitions["delayed"]))
    for change in (["move", "--in", "0s"], ["cancel"]):
        run_id = json.loads(cli("run", f"cli-delayed-{SUFFIX}").stdout)["run_id"]
        deadline = time.monotonic() + 60
        while True:  # 404 until the scheduler has set the timer
            changed = cli("timers", change[0], run_id, "wait", *change[1:])
            if changed.exit_code == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert changed.exit_code == 0, changed.output
        watched = cli("runs", "watch", run_id, "-o", "json")
        assert watched.exit_code == 0, watched.output
        statuses = {t["id"]: t["status"] for t in json.loads(watched.stdout)["tasks"]}
        # The run goes on at once either way (a cancelled delay's task is skipped by the
        # scheduler; the run view may not show that, so only a moved one is checked).
        assert statuses["after"] == "succeeded"
        if change[0] == "move":
            assert statuses["wait"] == "succeeded"


def test_dlq_replay_and_discard(cli, definitions) -> None:
    cli("apply", "-f", str(definitions["bad"]))
    run_id = json.loads(cli("run", f"cli-bad-{SUFFIX}", "--watch", "-o", "json").stdout)["run_id"]
    [letter] = json.loads(cli("dlq", "list", "--run", run_id).stdout)
    replayed = cli("dlq", "replay", letter["id"])
    assert replayed.exit_code == 0, replayed.output
    assert f"task boom of run {run_id}: attempt " in replayed.stdout
    deadline = time.monotonic() + 60
    while True:  # it fails again (not retryable) and is parked again
        letters = json.loads(cli("dlq", "list", "--run", run_id).stdout)
        if [item["id"] for item in letters] not in ([], [letter["id"]]):
            break
        assert time.monotonic() < deadline, letters
        time.sleep(0.2)
    [again] = letters
    assert again["attempts"] >= 1
    assert cli("dlq", "discard", again["id"]).exit_code == 0
    assert json.loads(cli("dlq", "list", "--run", run_id).stdout) == []


def test_admins_manage_users_keys_and_secrets(cli) -> None:
    name = f"dana-{SUFFIX}"
    created = cli(
        "users", "create", name, "--role", "developer", stdin="a-long-password\na-long-password\n"
    )
    assert created.exit_code == 0, created.output
    user_id = json.loads(created.stdout[created.stdout.index("{") :])["id"]
    assert cli("users", "set-roles", user_id, "--role", "operator").exit_code == 0
    assert cli("users", "disable", user_id).exit_code == 0
    shown = json.loads(cli("users", "get", user_id).stdout)
    assert (shown["roles"], shown["disabled_at"] is not None) == (["operator"], True)
    assert cli("users", "delete", user_id).exit_code == 0
    assert name not in [u["username"] for u in json.loads(cli("users", "list").stdout)]

    key = json.loads(cli("keys", "create", f"ci-{SUFFIX}", "--role", "viewer").stdout)
    assert key["key"].startswith("ilk_")
    assert cli("keys", "revoke", key["id"]).exit_code == 0
    [listed] = [k for k in json.loads(cli("keys", "list").stdout) if k["id"] == key["id"]]
    assert listed["revoked_at"] and "key" not in {k for k, v in listed.items() if v}

    secret = f"TOKEN_{SUFFIX.upper()}"
    stored = cli("secrets", "set", secret, "--value-stdin", stdin="s3cr3t-value\n")
    assert stored.exit_code == 0, stored.output
    names = [item["name"] for item in json.loads(cli("secrets", "list").stdout)]
    assert secret in names and "s3cr3t-value" not in cli("secrets", "list").stdout
    assert cli("secrets", "delete", secret).exit_code == 0


def test_a_problem_is_one_line_on_stderr_and_a_non_zero_exit(cli) -> None:
    missing = cli("runs", "get", "no-such-run")
    assert missing.exit_code == 3
    assert missing.stdout == ""
    assert missing.stderr.count("\n") == 1
    assert missing.stderr.startswith("Error: Run not found: ")
    assert "[HTTP 404, request " in missing.stderr

    invalid = cli("runs", "list", "--status", "bogus")
    assert invalid.exit_code == 3
    assert "(/query/status: " in invalid.stderr and invalid.stderr.count("\n") == 1


def test_the_installed_script_works_with_an_api_key_and_shows_no_traceback(platform) -> None:
    with Client(platform.gateway) as admin:
        admin.login(platform.username, platform.password)
        key = admin.api_keys.create(f"ci-{SUFFIX}", ["viewer"]).key
    assert key
    script = Path(sys.executable).parent / "interlock"
    env = {**os.environ, "INTERLOCK_GATEWAY": platform.gateway, "INTERLOCK_API_KEY": key}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(script), *args], env=env, capture_output=True, text=True, timeout=60, check=False
        )

    whoami = run("whoami")
    assert whoami.returncode == 0, whoami.stderr
    assert json.loads(whoami.stdout)["roles"] == ["viewer"]  # piped: JSON by default
    refused = run("apply", "-f", "-")  # no stdin: a local error
    assert refused.returncode == 2 and refused.stderr.startswith("Error: ")
    forbidden = run("workflows", "archive", "anything")
    assert forbidden.returncode == 3
    assert forbidden.stderr.startswith("Error: ") and "HTTP 403" in forbidden.stderr
    assert "Traceback" not in forbidden.stderr and forbidden.stderr.count("\n") == 1


def test_the_watch_view_as_a_terminal_draws_it(cli, platform, definitions) -> None:
    cli("apply", "-f", str(definitions["good"]))
    console = Console(record=True, width=100, force_terminal=True, file=io.StringIO())
    with Client(platform.gateway) as client:
        client.login(platform.username, platform.password)
        run = client.runs.start(f"cli-good-{SUFFIX}")
        final = watch_run(client, run.run_id, console, poll_interval_s=0.1)
    assert final.status == "succeeded"
    text = console.export_text()
    last_view = text[text.rindex(f"cli-good-{SUFFIX} v") :]
    assert f"run {run.run_id}  succeeded" in last_view
    for task in ("extract", "wait", "load"):
        assert f"{task}  " in last_view
    assert "3/3 tasks finished" in last_view


def test_logs_follow_prints_a_running_tasks_lines_and_ends_with_the_run(cli, definitions) -> None:
    applied = cli("apply", "-f", str(definitions["echo"]))
    assert applied.exit_code == 0, applied.output
    run_id = json.loads(cli("run", f"cli-echo-{SUFFIX}").stdout)["run_id"]
    followed = cli("logs", run_id, "-f", "-o", "table")
    assert followed.exit_code == 0, followed.output
    lines = [line for line in followed.stdout.splitlines() if "say#1" in line]
    assert [line.split()[-1] for line in lines] == ["one", "two", "three"]


def test_artifacts_put_list_get_and_a_url_that_needs_no_token(
    cli, platform, definitions, tmp_path
) -> None:
    applied = cli("apply", "-f", str(definitions["good"]))
    assert applied.exit_code == 0, applied.output
    run_id = json.loads(cli("run", f"cli-good-{SUFFIX}").stdout)["run_id"]
    source = tmp_path / "report.csv"
    source.write_bytes(b"a,b\n1,2\n")

    put = cli("artifacts", "put", run_id, str(source), "-o", "json")
    assert put.exit_code == 0, put.output
    artifact = json.loads(put.stdout)
    assert artifact["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    listed = json.loads(cli("artifacts", "list", run_id, "-o", "json").stdout)
    assert [item["name"] for item in listed] == ["report.csv"]
    copy = tmp_path / "copy.csv"
    got = cli("artifacts", "get", artifact["artifact_id"], "--output", str(copy))
    assert got.exit_code == 0, got.output
    assert copy.read_bytes() == source.read_bytes()
    shared = cli("artifacts", "url", artifact["artifact_id"], "--expires-in", "60")
    assert shared.exit_code == 0, shared.output
    downloaded = httpx.get(shared.stdout.strip(), timeout=30)
    assert (downloaded.status_code, downloaded.content) == (200, source.read_bytes())


_T = TypeVar("_T")


class _Hook(BaseHTTPRequestHandler):
    """A webhook receiver on loopback: keeps every request's headers and body."""

    received: ClassVar[list[tuple[dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        self.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the test reads what arrived."""


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    """A local webhook receiver (127.0.0.1, which the local stack lets webhooks reach)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", _Hook.received
    finally:
        server.shutdown()
        server.server_close()


def _until(found: Callable[[], _T | None], timeout_s: float = 60.0) -> _T:
    """What ``found`` returns once it is something, polling; fails after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not (result := found()):
        assert time.monotonic() < deadline, f"not within {timeout_s:g} s"
        time.sleep(0.2)
    return result


def test_subscriptions_test_reaches_a_local_receiver_and_shows_succeeded(cli, receiver) -> None:
    url, received = receiver
    created = cli(
        "subscriptions", "create", f"ops-{SUFFIX}", "-e", "run.failed",
        "--webhook", url, "-o", "json",
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    subscription = json.loads(created.stdout)
    listed = json.loads(cli("subscriptions", "list", "-o", "json").stdout)
    assert subscription["id"] in {item["id"] for item in listed}
    tested = cli("subscriptions", "test", subscription["id"])
    assert tested.exit_code == 0, tested.output

    headers, body = _until(lambda: received[-1] if received else None)
    message = Webhook(subscription["secret"]).verify(body, headers)
    assert message["type"] == "interlock.test"

    def succeeded() -> dict[str, object] | None:
        answer = cli("deliveries", "list", "--subscription", subscription["id"], "-o", "json")
        assert answer.exit_code == 0, answer.output
        found = json.loads(answer.stdout)
        return found[0] if found and found[0]["status"] == "succeeded" else None

    delivery = _until(succeeded)
    assert delivery["webhook_id"] == headers["webhook-id"]
    deleted = cli("subscriptions", "delete", subscription["id"])
    assert deleted.exit_code == 0, deleted.output
    remaining = json.loads(cli("subscriptions", "list", "-o", "json").stdout)
    assert subscription["id"] not in {item["id"] for item in remaining}
