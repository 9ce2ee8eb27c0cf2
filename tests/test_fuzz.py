"""Schemathesis over every service's OpenAPI document, through a real gateway.

One complete local stack (``python -m interlock.devstack up`` in its own folder, on its
own ports) serves the seven documents at ``/api/v1/<service>/openapi.json``. For each
operation of each document, schemathesis sends a bounded number of generated requests,
valid and invalid, with the admin's token, and checks two things of every answer: it is
no 5xx, and its status is one the document declares. Generation is derandomized, so a
run sends the same requests every time.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import status_code_conformance

from interlock.common.permissions import SERVICE_NAMES
from interlock.devstack import Stack
from interlock.devstack._process import port_is_free
from interlock.devstack._stack import ADMIN_PASSWORD, ADMIN_TENANT, ADMIN_USERNAME

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

EXAMPLES_PER_OPERATION = 20
"""Generated requests per operation: about 40 operations, so some 800 requests."""
OFFSETS = (21000, 22000, 23000, 24000)
"""Port offsets tried for the stack (the CLI tests use 30000-36000)."""
NETWORK_TASK_TYPES = {"http", "shell", "python"}
"""Task types whose params could reach past this machine; generated definitions run
``noop`` in their place (the tests only talk to loopback)."""


def _free_offset() -> int:
    for offset in OFFSETS:
        stack = Stack(data_dir=Path("/unused"), port_offset=offset)
        ports = [p for group in stack.ports_by_program().values() for p in group.values()]
        if all(port_is_free(port) for port in ports):
            return offset
    pytest.skip(f"no free port range for a stack among offsets {OFFSETS}")


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "interlock.devstack", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    # Not under pytest's tmp dir: it is 0700 root, and PostgreSQL runs as `interlock`.
    data_dir = Path(tempfile.mkdtemp(prefix="ilk-fuzz-"))
    data_dir.chmod(0o755)
    offset = _free_offset()
    env = {
        **os.environ,
        "INTERLOCK_DEV_DATA_DIR": str(data_dir),
        "INTERLOCK_DEV_PORT_OFFSET": str(offset),
    }
    env.pop("INTERLOCK_DEV_SERVICE_COMMAND", None)
    try:
        up = _cli(env, "up")
        assert up.returncode == 0, f"up failed:\n{up.stdout}\n{up.stderr}"
        yield Stack(data_dir=data_dir, port_offset=offset)
    finally:
        _cli(env, "down")
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def admin_token(stack: Stack) -> str:
    response = httpx.post(
        f"{stack.gateway_url}/api/v1/auth/login",
        json={"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD, "tenant": ADMIN_TENANT},
        trust_env=False,
        timeout=30,
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


@pytest.fixture(params=SERVICE_NAMES)
def api_document(stack: Stack, request: pytest.FixtureRequest) -> Any:
    """One service's OpenAPI document, read through the gateway (it is public)."""
    return schemathesis.openapi.from_url(
        f"{stack.gateway_url}/api/v1/{request.param}/openapi.json", timeout=30
    )


schema = schemathesis.pytest.from_fixture("api_document")


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_no_server_errors_and_only_documented_statuses(case: Any, admin_token: str) -> None:
    _keep_tasks_on_this_machine(case.body)
    case.call_and_validate(
        headers={"authorization": f"Bearer {admin_token}"},
        checks=[not_a_server_error, status_code_conformance],
        timeout=30,
    )


def _keep_tasks_on_this_machine(body: Any) -> None:
    if not isinstance(body, dict) or not isinstance(body.get("tasks"), list):
        return
    for task in body["tasks"]:
        for part in (task, task.get("compensate") if isinstance(task, dict) else None):
            if isinstance(part, dict) and part.get("type") in NETWORK_TASK_TYPES:
                part["type"] = "noop"
