"""Schemathesis over every service's OpenAPI document, through a real gateway.

The session's ``default_platform`` (one complete local stack for every service) serves
the seven documents at ``/api/v1/<service>/openapi.json``. For each operation of each
document, schemathesis sends a bounded number of generated requests, valid and invalid,
with the token of the admin of a tenant made for this module (what the requests create,
change or delete stays in it), and checks two things of every answer: it is no 5xx, and
its status is one the document declares. Generation is derandomized, so a run sends the
same requests every time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from hypothesis.strategies import SearchStrategy
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import status_code_conformance

from interlock.common.permissions import SERVICE_NAMES
from interlock.devstack import Platform, Stack, Tenant

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

EXAMPLES_PER_OPERATION = 10
"""Generated requests per operation and mode (valid, invalid): about 40 operations, so
some 800 requests."""
REVOKING = {"POST /api/v1/auth/logout", "DELETE /api/v1/auth/session"}
MAX_FAILURE_REPORT = 3000
"""Characters of each failure kept in the report (it carries the request and answer)."""
NETWORK_TASK_TYPES = {"http", "shell", "python"}
"""Task types whose params could reach past this machine; generated definitions run
``noop`` in their place (the tests only talk to loopback)."""


@pytest.fixture(scope="module")
def stack(default_platform: Platform) -> Stack:
    return default_platform.stack


@pytest.fixture(scope="module")
def tenant(default_platform: Platform) -> Tenant:
    return default_platform.new_tenant("fuzz")


def _operations(document: Any) -> list[Any]:
    """The document's operations; a part schemathesis cannot read fails the test."""
    operations = []
    for result in document.get_all_operations():
        if isinstance(result, Err):
            raise result.err()
        operations.append(result.ok())
    return operations


def _login(platform: Platform, tenant: Tenant) -> dict[str, str]:
    """Fresh headers with the access token of the tenant's admin (``login`` waits out the
    login rate limit, which the fuzzing may have used up)."""
    token = platform.login(tenant.admin_username, tenant.admin_password, tenant.name)
    return {"authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def log_in(default_platform: Platform, tenant: Tenant) -> Callable[[], dict[str, str]]:
    """Logs the tenant's admin in again (for the requests that revoke their own token)."""
    return lambda: _login(default_platform, tenant)


@pytest.fixture(scope="module")
def admin_headers(log_in: Callable[[], dict[str, str]]) -> dict[str, str]:
    """One admin login for the module (the gateway limits logins per address)."""
    return log_in()


def _assert_still_authorized(stack: Stack, headers: dict[str, str]) -> None:
    # A fuzz run whose token stopped working would see only 401s, which are documented.
    response = httpx.get(
        f"{stack.gateway_url}/api/v1/auth/me", headers=headers, trust_env=False, timeout=30
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_no_server_errors_and_only_documented_statuses(
    stack: Stack,
    admin_headers: dict[str, str],
    log_in: Callable[[], dict[str, str]],
    service: str,
) -> None:
    document = schemathesis.openapi.from_url(
        f"{stack.gateway_url}/api/v1/{service}/openapi.json", timeout=30
    )
    headers = admin_headers
    failures: list[str] = []
    for operation in _operations(document):
        for mode in GenerationMode:
            failure = _fuzz(
                operation.as_strategy(generation_mode=mode),
                _headers_for(log_in, operation, headers),
            )
            if failure:
                failures.append(f"{operation.label} ({mode.value}): {failure}")
    _assert_still_authorized(stack, headers)
    assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_hostile_values_get_no_server_error(
    stack: Stack,
    admin_headers: dict[str, str],
    log_in: Callable[[], dict[str, str]],
    service: str,
) -> None:
    """Each parameter in turn holding NUL (a string) or 2**31 (an integer), and bodies
    whose strings hold NUL: values the databases refuse, which generation rarely hits."""
    document = schemathesis.openapi.from_url(
        f"{stack.gateway_url}/api/v1/{service}/openapi.json", timeout=30
    )
    headers = admin_headers
    failures: list[str] = []
    for operation in _operations(document):
        strategies = {"body": operation.as_strategy()}
        for location, parameters in (
            ("query", operation.query),
            ("path", operation.path_parameters),
        ):
            for parameter in parameters:
                value = _hostile_value(_example_of(parameter.definition.get("schema", {})))
                if value is not None:
                    fixed = {parameter.name: value}
                    strategies[f"{location} {parameter.name}"] = (
                        operation.as_strategy(query=fixed)
                        if location == "query"
                        else operation.as_strategy(path_parameters=fixed)
                    )
        for what, strategy in strategies.items():
            failure = _fuzz(
                strategy, _headers_for(log_in, operation, headers), mutate=_hostile_body, examples=1
            )
            if failure:
                failures.append(f"{operation.label} ({what}): {failure}")
    _assert_still_authorized(stack, headers)
    assert not failures, "\n\n".join(failures)


def _headers_for(
    log_in: Callable[[], dict[str, str]], operation: Any, headers: dict[str, str]
) -> dict[str, str]:
    # Logging out (or signing a session out) revokes the token it is sent with: those
    # get a token of their own.
    return log_in() if operation.label in REVOKING else headers


def _fuzz(
    cases: SearchStrategy[Case[Any]],
    headers: dict[str, str],
    *,
    mutate: Callable[[Case[Any]], None] | None = None,
    examples: int = EXAMPLES_PER_OPERATION,
) -> str | None:
    """Send generated requests (changed by ``mutate``); the first failed check, or ``None``."""

    @settings(
        max_examples=examples,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: the first failure is enough
        suppress_health_check=list(HealthCheck),
    )
    @given(cases)
    def send(case: Case[Any]) -> None:
        if mutate is not None:
            mutate(case)
        _keep_tasks_on_this_machine(case.body)
        case.call_and_validate(
            headers=headers, checks=[not_a_server_error, status_code_conformance], timeout=30
        )

    try:
        send()
    except Unsatisfiable:
        return None  # nothing of this mode can be generated (e.g. no invalid input exists)
    except (FailureGroup, Failure) as failure:  # failed checks, with the request
        return _report(failure)
    return None


def _report(failure: BaseException) -> str:
    """The failed checks and the request's ``curl`` line (schemathesis's own summary)."""
    summary = failure.args[0] if failure.args else str(failure)
    return str(summary)[:MAX_FAILURE_REPORT]


def _example_of(schema: dict[str, Any]) -> Any:
    """A plain string or integer the parameter's schema takes, else ``None``."""
    for option in [schema, *schema.get("anyOf", [])]:
        if "enum" in option or "format" in option:
            continue
        if option.get("type") == "string":
            return "x"
        if option.get("type") == "integer":
            return 1
    return None


def _hostile_value(value: Any) -> Any:
    if isinstance(value, str):
        return value + "\x00"
    if isinstance(value, int) and not isinstance(value, bool):
        return 2**31
    return value


def _hostile_body(case: Case[Any]) -> None:
    if isinstance(case.body, dict):
        case.body = {key: _hostile_value(value) for key, value in case.body.items()}


def _keep_tasks_on_this_machine(body: Any) -> None:
    if not isinstance(body, dict) or not isinstance(body.get("tasks"), list):
        return
    for task in body["tasks"]:
        for part in (task, task.get("compensate") if isinstance(task, dict) else None):
            if isinstance(part, dict) and str(part.get("type")) in NETWORK_TASK_TYPES:
                part["type"] = "noop"
