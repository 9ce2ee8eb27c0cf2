"""What tasks write reaches their attempt's log, line by line, while they run."""

import asyncio
import json
import logging
import sys
from typing import Any

import pytest

from interlock.worker import WorkerSettings
from interlock.worker.context import LogLine, TaskContext
from interlock.worker.errors import InvalidParams
from interlock.worker.executors.builtin import EchoExecutor
from interlock.worker.executors.http import HttpExecutor
from interlock.worker.executors.python import PythonExecutor
from interlock.worker.executors.shell import ShellExecutor
from interlock.worker.sdk import current_context, task

pytestmark = pytest.mark.integration


@task("tests.logs.chatty")
def chatty(name: str) -> str:
    print(f"hello {name}")
    print("no line break", end="")
    logging.getLogger("user.code").warning("careful with %s", name)
    logging.getLogger("interlock.worker.inner").warning("the worker's own record")
    current_context().logger.error("through the sdk")
    return name


@task("tests.logs.async_chatty")
async def async_chatty() -> None:
    await asyncio.sleep(0)
    print("from a coroutine", file=sys.stderr)


def lines_of(context: TaskContext) -> list[LogLine]:
    return context.logger.drain()


async def test_echo_writes_its_lines_in_order_with_sequence_numbers(kit: Any) -> None:
    context = kit.make_context("echo")
    output = await EchoExecutor(WorkerSettings()).execute(
        {"lines": ["one", "two", "three"], "interval": "1ms", "level": "warning"}, context
    )
    lines = lines_of(context)
    assert output == {"lines": 3}
    assert [(line.seq, line.level, line.message) for line in lines] == [
        (1, "WARNING", "one"),
        (2, "WARNING", "two"),
        (3, "WARNING", "three"),
    ]


async def test_echo_without_interval_writes_every_line_in_one_step(kit: Any) -> None:
    """No yield between the lines: the attempt ends in its first step, like any instant
    task, and so is never announced with a task.started."""
    context = kit.make_context("echo")
    steps = EchoExecutor(WorkerSettings()).execute(
        {"lines": ["a", "b", "c"], "interval": 0}, context
    )
    with pytest.raises(StopIteration) as ended:
        steps.send(None)
    assert ended.value.value == {"lines": 3}
    assert [line.message for line in lines_of(context)] == ["a", "b", "c"]


@pytest.mark.parametrize(
    "params",
    [{}, {"lines": "one"}, {"lines": ["a"], "interval": "soon"}, {"lines": ["a"], "level": "loud"}],
)
async def test_echo_refuses_bad_params(kit: Any, params: dict[str, Any]) -> None:
    with pytest.raises(InvalidParams):
        await EchoExecutor(WorkerSettings()).execute(params, kit.make_context("echo"))


async def test_python_print_and_logging_go_to_the_attempt_log(kit: Any) -> None:
    executor = PythonExecutor(WorkerSettings())
    try:
        context = kit.make_context("python")
        context.activate()
        await executor.execute({"function": "tests.logs.chatty", "args": {"name": "ada"}}, context)
        other = kit.make_context("python")
        await executor.execute({"function": "tests.logs.async_chatty"}, other)
    finally:
        await executor.aclose()
    assert [(line.level, line.message) for line in lines_of(context)] == [
        ("INFO", "hello ada"),
        ("WARNING", "careful with ada"),
        ("ERROR", "through the sdk"),
        ("INFO", "no line break"),
    ]
    assert [(line.level, line.message) for line in lines_of(other)] == [
        ("WARNING", "from a coroutine")
    ]


async def test_shell_output_is_logged_line_by_line_while_the_program_runs(kit: Any) -> None:
    executor = ShellExecutor(
        WorkerSettings(shell_enabled=True, shell_allowed_commands=[sys.executable])
    )
    script = (
        "import sys, time\n"
        "print('first', flush=True)\n"
        "print('oops', file=sys.stderr, flush=True)\n"
        "time.sleep(60)\n"  # the test cancels it once it has seen the first lines
    )
    context = kit.make_context("shell")
    running = asyncio.create_task(
        executor.execute({"command": [sys.executable, "-c", script]}, context)
    )
    seen: list[LogLine] = []
    async with asyncio.timeout(20):
        while len(seen) < 2:
            seen += lines_of(context)
            await asyncio.sleep(0.02)
    assert not running.done()
    assert sorted((line.level, line.message) for line in seen) == [
        ("INFO", "first"),
        ("WARNING", "oops"),
    ]
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running


async def test_shell_output_keeps_every_line_in_the_log_and_the_output(kit: Any) -> None:
    executor = ShellExecutor(
        WorkerSettings(shell_enabled=True, shell_allowed_commands=[sys.executable])
    )
    context = kit.make_context("shell")
    output = await executor.execute(
        {"command": [sys.executable, "-c", "print('a\\nb'); print('c', end='')"]}, context
    )
    assert output["stdout"] == "a\nb\nc"
    assert [(line.seq, line.message) for line in lines_of(context)] == [
        (1, "a"),
        (2, "b"),
        (3, "c"),
    ]


async def test_each_http_call_logs_one_summary_line_without_credentials(
    http_server: str, kit: Any
) -> None:
    executor = HttpExecutor(WorkerSettings(http_allowed_networks=["127.0.0.0/8"]))
    context = kit.make_context("http")
    try:
        await executor.execute({"url": f"{http_server}/hello?page=2&api_key=hunter2"}, context)
    finally:
        await executor.aclose()
    [line] = lines_of(context)
    assert line.level == "INFO"
    assert line.message.startswith(f"GET {http_server}/hello?page=2&api_key=[redacted] 200 in ")
    assert "hunter2" not in line.message


_SERVICE_LIKE = """
import asyncio, json, logging, sys
from interlock.common.logs import configure_logging
from interlock.worker import WorkerSettings
from interlock.worker.context import TaskContext
from interlock.worker.executors.python import PythonExecutor
from interlock.worker.sdk import current_context, task

@task("demo.chatty")
def chatty() -> None:
    print("printed")
    logging.getLogger("user.code").warning("logged")
    current_context().logger.info("through the sdk")

async def main() -> None:
    executor = PythonExecutor(WorkerSettings())  # created before logging is configured
    configure_logging("worker", fmt="json")
    context = TaskContext(tenant="t", run_id="r", task_id="a", attempt=1, task_type="python",
                          idempotency_key="k", worker_id="w")
    context.activate()
    await executor.execute({"function": "demo.chatty"}, context)
    await executor.aclose()
    lines = [[line.level, line.message] for line in context.logger.drain()]
    sys.stderr.write("CAPTURED " + json.dumps(lines) + "\\n")

asyncio.run(main())
"""


async def test_a_service_configured_worker_captures_each_line_once() -> None:
    # As in the service: the app (and its executors) exists before logging is
    # configured; the worker's own log handler must not feed its records back.
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _SERVICE_LIKE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()
    [captured] = [line for line in stderr.decode().splitlines() if line.startswith("CAPTURED ")]
    assert json.loads(captured.removeprefix("CAPTURED ")) == [
        ["INFO", "printed"],
        ["WARNING", "logged"],
        ["INFO", "through the sdk"],
    ]
    assert b"logged" in stdout  # the worker's own log still has the record
