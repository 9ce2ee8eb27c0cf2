"""Each executor on its own, against real local servers and processes."""

import asyncio
import json
import sys
import threading
from typing import Any

import pytest

from interlock.worker import WorkerSettings, load_executors
from interlock.worker.errors import ExecutorUnavailable, InvalidParams, TaskFailure
from interlock.worker.executors.builtin import (
    FailExecutor,
    FlakyExecutor,
    NoopExecutor,
    SleepExecutor,
)
from interlock.worker.executors.http import AddressNotAllowed, HttpExecutor
from interlock.worker.executors.python import PythonExecutor
from interlock.worker.executors.shell import CommandNotAllowed, ShellExecutor
from interlock.worker.sdk import current_context, task

pytestmark = pytest.mark.integration


@task("tests.executors.add")
def add(a: int, b: int) -> dict[str, Any]:
    ctx = current_context()
    ctx.logger.info("adding in %s", threading.current_thread().name)
    return {"sum": a + b, "key": ctx.idempotency_key, "thread": threading.current_thread().name}


@task("tests.executors.async_echo")
async def async_echo(text: str) -> dict[str, Any]:
    await asyncio.sleep(0)
    return {"echo": text, "attempt": current_context().attempt}


@task("tests.executors.broken")
def broken() -> None:
    raise RuntimeError("database is down")


def plain_settings(**overrides: Any) -> WorkerSettings:
    return WorkerSettings(**overrides)


def test_every_builtin_executor_is_discovered_through_entry_points() -> None:
    executors = load_executors(plain_settings())
    assert {"http", "python", "shell", "noop", "sleep", "fail", "flaky"} <= set(executors)


async def test_http_get_returns_status_headers_and_body(http_server: str, kit: Any) -> None:
    executor = HttpExecutor(plain_settings(http_allowed_networks=["127.0.0.0/8"]))
    try:
        output = await executor.execute({"url": f"{http_server}/hello"}, kit.make_context())
    finally:
        await executor.aclose()
    assert output["status"] == 200
    assert output["body"] == "hello"
    assert output["headers"]["x-test"] == "yes"
    assert output["body_truncated"] is False


async def test_http_post_sends_json_and_accepts_chosen_statuses(http_server: str, kit: Any) -> None:
    executor = HttpExecutor(plain_settings(http_allowed_networks=["127.0.0.0/8"]))
    try:
        created = await executor.execute(
            {"method": "post", "url": f"{http_server}/items", "json": {"n": 1}},
            kit.make_context(),
        )
        not_found = await executor.execute(
            {"url": f"{http_server}/status/404", "accepted_statuses": [404]}, kit.make_context()
        )
    finally:
        await executor.aclose()
    assert created["status"] == 201
    echoed = json.loads(created["body"])
    assert json.loads(echoed["body"]) == {"n": 1}
    assert echoed["content_type"] == "application/json"
    assert not_found["status"] == 404


async def test_http_failures_are_classified(http_server: str, kit: Any) -> None:
    executor = HttpExecutor(
        plain_settings(http_allowed_networks=["127.0.0.0/8"], http_max_response_bytes=100)
    )
    try:
        with pytest.raises(TaskFailure) as server_error:
            await executor.execute({"url": f"{http_server}/status/503"}, kit.make_context())
        with pytest.raises(TaskFailure) as client_error:
            await executor.execute({"url": f"{http_server}/status/404"}, kit.make_context())
        with pytest.raises(TimeoutError):
            await executor.execute(
                {"url": f"{http_server}/slow", "timeout": "200ms"}, kit.make_context()
            )
        with pytest.raises(InvalidParams):
            await executor.execute({"url": "ftp://example.com/x"}, kit.make_context())
        with pytest.raises(InvalidParams):
            await executor.execute({"method": "GET"}, kit.make_context())
        big = await executor.execute({"url": f"{http_server}/big"}, kit.make_context())
    finally:
        await executor.aclose()
    assert server_error.value.retryable is True
    assert server_error.value.type == "HTTPStatusError"
    assert client_error.value.retryable is False
    assert big["body_truncated"] is True
    assert len(big["body"]) == 100


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/hello",
        "http://localhost:{port}/hello",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "http://[::1]:{port}/",
    ],
)
async def test_http_address_guard_denies_private_targets_unless_allowed(
    url: str, http_server: str, kit: Any
) -> None:
    port = http_server.rsplit(":", 1)[1]
    executor = HttpExecutor(plain_settings())
    try:
        with pytest.raises(AddressNotAllowed) as denied:
            await executor.execute({"url": url.format(port=port)}, kit.make_context())
    finally:
        await executor.aclose()
    assert denied.value.retryable is False


async def test_http_address_guard_allows_loopback_by_name_when_configured(
    http_server: str, kit: Any
) -> None:
    port = http_server.rsplit(":", 1)[1]
    executor = HttpExecutor(plain_settings(http_allowed_networks=["127.0.0.0/8", "::1/128"]))
    try:
        output = await executor.execute(
            {"url": f"http://localhost:{port}/hello"}, kit.make_context()
        )
    finally:
        await executor.aclose()
    assert output["body"] == "hello"


async def test_python_calls_sync_functions_in_threads_and_async_ones_on_the_loop(
    kit: Any,
) -> None:
    executor = PythonExecutor(plain_settings(python_max_threads=2))
    context = kit.make_context("python")
    token = context.activate()
    try:
        sync = await executor.execute(
            {"function": "tests.executors.add", "args": {"a": 2, "b": 3}}, context
        )
        async_ = await executor.execute(
            {"function": "tests.executors.async_echo", "args": {"text": "hi"}}, context
        )
    finally:
        token.var.reset(token)
        await executor.aclose()
    assert sync["sum"] == 5
    assert sync["key"] == "key-1"
    assert sync["thread"].startswith("interlock-task")
    assert context.logger.drain()[0].message.startswith("adding in interlock")
    assert async_ == {"echo": "hi", "attempt": 1}


async def test_python_refuses_unknown_functions_and_misfit_args(kit: Any) -> None:
    executor = PythonExecutor(plain_settings())
    try:
        with pytest.raises(ExecutorUnavailable):
            await executor.execute({"function": "tests.nope"}, kit.make_context())
        with pytest.raises(InvalidParams, match="args do not fit"):
            await executor.execute(
                {"function": "tests.executors.add", "args": {"a": 1}}, kit.make_context()
            )
        with pytest.raises(RuntimeError, match="database is down"):
            await executor.execute({"function": "tests.executors.broken"}, kit.make_context())
    finally:
        await executor.aclose()


async def test_shell_is_off_unless_enabled(kit: Any) -> None:
    executor = ShellExecutor(plain_settings(shell_allowed_commands=["echo"]))
    with pytest.raises(ExecutorUnavailable) as disabled:
        await executor.execute({"command": ["echo", "hi"]}, kit.make_context())
    assert disabled.value.retryable is False


async def test_shell_runs_only_allowed_commands_with_captured_output(
    kit: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INTERLOCK_TEST_SECRET", "hunter2")
    executor = ShellExecutor(
        plain_settings(shell_enabled=True, shell_allowed_commands=["echo", "false", sys.executable])
    )
    output = await executor.execute({"command": ["echo", "a b", "$HOME"]}, kit.make_context())
    assert output == {
        "exit_code": 0,
        "stdout": "a b $HOME\n",
        "stderr": "",
        "stdout_truncated": False,
        "stderr_truncated": False,
    }
    env = await executor.execute(
        {"command": [sys.executable, "-c", "import os; print(sorted(os.environ))"]},
        kit.make_context(),
    )
    assert "INTERLOCK_TEST_SECRET" not in env["stdout"]
    assert "PATH" in env["stdout"]
    with pytest.raises(CommandNotAllowed):
        await executor.execute({"command": ["rm", "-rf", "/tmp/x"]}, kit.make_context())
    with pytest.raises(CommandNotAllowed):
        await executor.execute({"command": ["sh", "-c", "echo hi"]}, kit.make_context())
    with pytest.raises(TaskFailure) as failed:
        await executor.execute({"command": ["false"]}, kit.make_context())
    assert failed.value.retryable is True
    assert failed.value.type == "CommandFailed"
    with pytest.raises(TimeoutError):
        await executor.execute(
            {"command": [sys.executable, "-c", "import time; time.sleep(30)"], "timeout": "300ms"},
            kit.make_context(),
        )


@pytest.mark.parametrize(
    "name", ["PATH", "LD_PRELOAD", "LD_LIBRARY_PATH", "PYTHONPATH", "BASH_ENV"]
)
async def test_shell_tasks_may_not_set_variables_that_change_what_runs(kit: Any, name: str) -> None:
    executor = ShellExecutor(
        plain_settings(shell_enabled=True, shell_allowed_commands=[sys.executable])
    )
    with pytest.raises(InvalidParams, match=name) as refused:
        await executor.execute(
            {"command": [sys.executable, "-c", "pass"], "env": {name: "/tmp/evil"}},
            kit.make_context(),
        )
    assert refused.value.retryable is False


async def test_shell_tasks_add_allowed_variables_to_the_inherited_environment(kit: Any) -> None:
    executor = ShellExecutor(
        plain_settings(shell_enabled=True, shell_allowed_commands=[sys.executable])
    )
    script = "import os; print(os.environ['TASK_TOKEN'], os.environ['TZ'], 'PATH' in os.environ)"
    output = await executor.execute(
        {"command": [sys.executable, "-c", script], "env": {"TASK_TOKEN": "t", "TZ": "UTC"}},
        kit.make_context(),
    )
    assert output["stdout"] == "t UTC True\n"


async def test_shell_refuses_a_string_command_that_it_would_have_to_split(kit: Any) -> None:
    # Splitting after templates were filled let run input add arguments: the workflow
    # service splits strings when the definition is saved, so none should arrive here.
    executor = ShellExecutor(plain_settings(shell_enabled=True, shell_allowed_commands=["echo"]))
    with pytest.raises(InvalidParams, match="command"):
        await executor.execute({"command": "echo hi --injected"}, kit.make_context())


async def test_flaky_fails_at_its_rate_and_fail_and_sleep_check_their_params(kit: Any) -> None:
    settings = plain_settings(heartbeat_interval_ms=20)
    flaky = FlakyExecutor(settings)
    assert await flaky.execute({"failure_rate": 0}, kit.make_context()) == {"attempt": 1}
    with pytest.raises(TaskFailure) as flaked:
        await flaky.execute({"failure_rate": 1}, kit.make_context())
    assert (flaked.value.type, flaked.value.retryable) == ("FlakyFailure", True)
    with pytest.raises(InvalidParams):
        await flaky.execute({"failure_rate": 2}, kit.make_context())
    outcomes = []
    for _ in range(200):
        try:
            await flaky.execute({"failure_rate": 0.5}, kit.make_context())
            outcomes.append(True)
        except TaskFailure:
            outcomes.append(False)
    assert 40 < sum(outcomes) < 160

    with pytest.raises(TaskFailure) as failed:
        await FailExecutor(settings).execute({"retryable": False}, kit.make_context())
    assert failed.value.retryable is False
    with pytest.raises(InvalidParams):
        await FailExecutor(settings).execute({"retryable": "maybe"}, kit.make_context())

    context = kit.make_context()
    slept = await SleepExecutor(settings).execute({"duration_ms": 60}, context)
    assert slept == {"slept_ms": 60}
    assert json.loads(context.heartbeat_details)["slept_ms"] > 0
    with pytest.raises(InvalidParams):
        await SleepExecutor(settings).execute({}, kit.make_context())
    assert await NoopExecutor(settings).execute(None, kit.make_context()) == {}
