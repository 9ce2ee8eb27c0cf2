"""What one user sends never becomes a 500, a stalled service or a megabyte-long error.

Each test is a finding of a hostile tester (issue 13) that answered 500, blocked the
event loop, or echoed the request back at full size.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from interlock.workflow.domain.issues import MAX_DETAIL_CHARS
from interlock.workflow.domain.limits import MAX_PARAMS_BYTES

pytestmark = pytest.mark.integration

JSON = {"content-type": "application/json"}
YAML = {"content-type": "application/yaml"}


def definition(**overrides: object) -> dict[str, object]:
    return {"name": "hostile", "tasks": [{"id": "a", "type": "noop"}], **overrides}


async def create(client: httpx.AsyncClient, document: object) -> httpx.Response:
    return await client.post("/api/v1/workflows", content=json.dumps(document), headers=JSON)


def assert_problem(response: httpx.Response, *statuses: int) -> None:
    assert response.status_code in statuses, response.text
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("name", [{"a": 1}, 7, ["a"], None, True])
async def test_a_name_that_is_no_string_is_422(client: httpx.AsyncClient, name: object) -> None:
    assert_problem(await create(client, definition(name=name)), 422)


async def test_a_version_beyond_the_integer_column_is_422(client: httpx.AsyncClient) -> None:
    assert (await create(client, definition())).status_code == 201
    response = await client.get("/api/v1/workflows/hostile/versions/2147483648")
    assert_problem(response, 422)
    assert_problem(await client.get("/api/v1/workflows/hostile/versions/2147483647"), 404)


@pytest.mark.parametrize(
    "overrides",
    [
        {"description": "a\u0000b"},
        {"labels": {"team": "a\u0000"}},
        {"labels": {"te\u0000am": "a"}},
        {"tasks": [{"id": "a", "type": "noop", "params": {"x": "\u0000"}}]},
        {"input_schema": {"type": "object", "description": "\u0000"}},
    ],
    ids=["description", "label-value", "label-key", "params", "input-schema"],
)
async def test_nul_anywhere_in_a_definition_is_400(
    client: httpx.AsyncClient, overrides: dict[str, object]
) -> None:
    assert_problem(await create(client, definition(**overrides)), 400)


async def test_nul_in_a_yaml_definition_is_400(client: httpx.AsyncClient) -> None:
    text = 'name: hostile\ndescription: "a\\0b"\ntasks: [{id: a, type: noop}]\n'
    response = await client.post("/api/v1/workflows", content=text, headers=YAML)
    assert_problem(response, 400)


@pytest.mark.parametrize(
    "literal", ["NaN", "Infinity", "-Infinity", "1e999999", "9" * 5000, '"\\ud800"']
)
async def test_unstorable_numbers_and_strings_in_a_run_input_are_400(
    client: httpx.AsyncClient, literal: str
) -> None:
    assert (await create(client, definition())).status_code == 201
    body = '{"input": {"x": ' + literal + "}}"
    for headers in (JSON, {}):
        response = await client.post(
            "/api/v1/workflows/hostile/runs", content=body, headers=headers
        )
        assert_problem(response, 400)


@pytest.mark.parametrize(
    "parameter", ["name_prefix", "workflow", "task_type", "error_type", "task_id", "run_id"]
)
async def test_nul_in_a_query_filter_is_400(client: httpx.AsyncClient, parameter: str) -> None:
    for path in ("/api/v1/workflows", "/api/v1/runs"):
        assert_problem(await client.get(path, params={parameter: "a\u0000"}), 400)


async def test_an_unresolvable_ref_is_refused_when_saved(client: httpx.AsyncClient) -> None:
    for ref in ("#/$defs/missing", "https://example.test/schema.json", "other.json#/x"):
        schema = {"type": "object", "properties": {"x": {"$ref": ref}}}
        response = await create(client, definition(input_schema=schema))
        assert_problem(response, 422)
        assert response.json()["errors"][0]["pointer"] == "/input_schema/properties/x/$ref"
    schema = {"$defs": {"s": {"type": "string"}}, "properties": {"x": {"$ref": "#/$defs/s"}}}
    assert (await create(client, definition(input_schema=schema))).status_code == 201
    runs = "/api/v1/workflows/hostile/runs"
    assert (await client.post(runs, json={"input": {"x": "ok"}})).status_code == 201
    assert_problem(await client.post(runs, json={"input": {"x": 1}}), 422)


@pytest.mark.timeout(120)  # a hang guard: with Python's re this input took minutes
async def test_a_catastrophic_pattern_is_matched_in_linear_time(
    client: httpx.AsyncClient,
) -> None:
    schema = {
        "type": "object",
        "properties": {"x": {"type": "string", "pattern": "^(a+)+$"}},
        "patternProperties": {"^(b+)+$": {"type": "integer"}},
    }
    assert (await create(client, definition(input_schema=schema))).status_code == 201
    runs = "/api/v1/workflows/hostile/runs"
    evil = {"x": "a" * 40 + "!", "b" * 40 + "!": "not checked"}
    refused = await client.post(runs, json={"input": evil})
    assert_problem(refused, 422)
    assert (await client.post(runs, json={"input": {"x": "aaa", "bb": 1}})).status_code == 201


async def test_a_pattern_re2_cannot_match_is_refused_when_saved(
    client: httpx.AsyncClient,
) -> None:
    schema = {"properties": {"x": {"pattern": "(a)\\1"}}}
    response = await create(client, definition(input_schema=schema))
    assert_problem(response, 422)
    assert "RE2" in response.json()["errors"][0]["detail"]


async def test_an_error_echoes_a_bounded_excerpt(client: httpx.AsyncClient) -> None:
    tasks = [{"id": f"t{i}", "type": "noop", "params": {"x": "y" * 50}} for i in range(10_000)]
    response = await create(client, definition(tasks=tasks))
    assert_problem(response, 413, 422)
    assert len(response.content) < 64 * 1024
    assert all(len(e["detail"]) <= MAX_DETAIL_CHARS for e in response.json().get("errors", []))


async def test_yaml_duplicate_keys_are_an_error(client: httpx.AsyncClient) -> None:
    text = "name: hostile\nname: other\ntasks: [{id: a, type: noop}]\n"
    response = await client.post("/api/v1/workflows", content=text, headers=YAML)
    assert_problem(response, 400)
    assert "duplicate key" in response.json()["detail"]


@pytest.mark.parametrize("zone", ["localtime", "posixrules", "posix/Europe/Berlin", "Factory"])
async def test_a_machine_dependent_timezone_is_refused(
    client: httpx.AsyncClient, zone: str
) -> None:
    tasks = [
        {
            "id": "w",
            "type": "delay",
            "params": {"weekdays": ["mon"], "at": "09:00", "timezone": zone},
        }
    ]
    response = await create(client, definition(tasks=tasks))
    assert_problem(response, 422)
    assert [e["pointer"] for e in response.json()["errors"]] == ["/tasks/0/params/timezone"]


async def test_params_larger_than_the_limit_are_422_naming_it(client: httpx.AsyncClient) -> None:
    # 200,000 x "é" made a 1.2 MB task.scheduled that the outbox retried forever.
    tasks = [{"id": "a", "type": "noop", "params": {"x": "é" * 40_000}}]
    response = await create(client, definition(tasks=tasks))
    assert_problem(response, 422)
    assert str(MAX_PARAMS_BYTES) in response.json()["errors"][0]["detail"]


@pytest.mark.timeout(120)  # a hang guard: the old scan needed most of an hour
async def test_a_20000_space_template_is_validated_while_health_answers(
    client: httpx.AsyncClient,
) -> None:
    params = {"a": "{{" + " " * 20_000, "b": "{{" + " " * 20_000 + "input.x" + " " * 20_000 + "}}"}
    document = definition(tasks=[{"id": "a", "type": "noop", "params": params}])
    saving = asyncio.create_task(create(client, document))
    health = await client.get("/healthz")
    assert health.status_code == 200
    assert (await saving).status_code == 201


@pytest.mark.parametrize(
    "time", ["0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00"]
)
async def test_times_at_the_edge_of_the_calendar_are_4xx_or_served(
    client: httpx.AsyncClient, time: str
) -> None:
    for parameter in ("created_after", "created_before"):
        response = await client.get("/api/v1/runs", params={parameter: time})
        assert response.status_code in (200, 422), response.text
