"""Starting and stopping servers: readiness failures and process-group clean-up."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from interlock.devstack import ServerStartError
from interlock.devstack._process import free_ports, process_group_members
from interlock.devstack._runner import start_server
from interlock.devstack._servers import ServerSpec, kafka_spec


async def _never_ready() -> None:
    raise ConnectionError("nobody home")


def test_a_dead_server_fails_fast_with_its_log(tmp_path: Path) -> None:
    spec = ServerSpec(
        name="broken",
        argv=(sys.executable, "-c", "print('boom: bad config'); raise SystemExit(3)"),
        probe=_never_ready,
        ports={},
        start_timeout_s=30,
    )
    with pytest.raises(ServerStartError) as caught:
        start_server(spec, log_path=tmp_path / "broken.log")
    message = str(caught.value)
    assert "broken exited before it was ready" in message
    assert "nobody home" in message
    assert "boom: bad config" in message


def test_a_server_that_never_answers_times_out(tmp_path: Path) -> None:
    spec = ServerSpec(
        name="silent",
        argv=(sys.executable, "-c", "import time; print('sleeping'); time.sleep(60)"),
        probe=_never_ready,
        ports={},
        start_timeout_s=1,
    )
    with pytest.raises(ServerStartError, match="silent was not ready after 1 s") as caught:
        start_server(spec, log_path=tmp_path / "silent.log")
    assert "sleeping" in str(caught.value)


@pytest.mark.integration
def test_stop_leaves_no_process_behind(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    server = start_server(kafka_spec(port=port), log_path=tmp_path / "kafka.log")
    pgid = server.pid
    assert process_group_members([pgid])
    server.stop()
    assert process_group_members([pgid]) == {}
