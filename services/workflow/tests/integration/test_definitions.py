"""Definitions over REST: create, validate, version, archive, list; tenant-scoped."""

import base64
import json

import httpx
import pytest

from .conftest import gateway_headers

pytestmark = pytest.mark.integration

YAML = {"content-type": "application/yaml"}

DEFINITION = """
name: etl
labels: {team: data}
input_schema: {type: object, required: [source], properties: {source: {type: string}}}
tasks:
  - id: extract
    type: http
    params: {url: "{{ input.source }}"}
  - id: load
    type: noop
    depends_on: [extract]
"""


async def create(client: httpx.AsyncClient, text: str = DEFINITION) -> httpx.Response:
    return await client.post("/api/v1/workflows", content=text, headers=YAML)


async def test_create_then_get_and_409_on_a_second_create(client: httpx.AsyncClient) -> None:
    created = await create(client)
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["name"], body["version"], body["labels"]) == ("etl", 1, {"team": "data"})
    assert created.headers["location"] == "/api/v1/workflows/etl"
    assert body["definition"]["tasks"][0]["id"] == "extract"
    assert body["created_at"].endswith("Z")
    again = await create(client)
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    fetched = await client.get("/api/v1/workflows/etl")
    assert fetched.json() == body


async def test_an_invalid_definition_answers_422_with_one_pointer_per_problem(
    client: httpx.AsyncClient,
) -> None:
    bad = DEFINITION.replace("type: noop", "type: teleport").replace(
        "depends_on: [extract]", "depends_on: [extract, ghost]"
    )
    response = await create(client, bad)
    assert response.status_code == 422
    problem = response.json()
    assert problem["type"] == "urn:interlock:problem:invalid-definition"
    assert [e["pointer"] for e in problem["errors"]] == [
        "/tasks/1/depends_on/1",
        "/tasks/1/type",
    ]
    assert (await client.get("/api/v1/workflows/etl")).status_code == 404


async def test_json_bodies_bad_syntax_and_other_media_types(client: httpx.AsyncClient) -> None:
    document = {"name": "j", "tasks": [{"id": "a", "type": "noop"}]}
    assert (await client.post("/api/v1/workflows", json=document)).status_code == 201
    broken = await client.post(
        "/api/v1/workflows", content="{", headers={"content-type": "application/json"}
    )
    assert broken.status_code == 400
    other = await client.post(
        "/api/v1/workflows", content="x", headers={"content-type": "text/plain"}
    )
    assert other.status_code == 415


async def test_put_versions_only_changes_and_old_versions_stay(client: httpx.AsyncClient) -> None:
    assert (await create(client)).status_code == 201
    same = await client.put("/api/v1/workflows/etl", content=DEFINITION, headers=YAML)
    assert (same.status_code, same.json()["version"]) == (200, 1)
    changed_text = DEFINITION.replace("type: noop", "type: sleep")
    changed = await client.put("/api/v1/workflows/etl", content=changed_text, headers=YAML)
    assert (changed.status_code, changed.json()["version"]) == (201, 2)
    latest = (await client.get("/api/v1/workflows/etl")).json()
    assert (latest["version"], latest["definition"]["tasks"][1]["type"]) == (2, "sleep")
    first = (await client.get("/api/v1/workflows/etl/versions/1")).json()
    assert (first["version"], first["definition"]["tasks"][1]["type"]) == (1, "noop")
    versions = (await client.get("/api/v1/workflows/etl/versions")).json()["versions"]
    assert [v["version"] for v in versions] == [1, 2]
    assert (await client.get("/api/v1/workflows/etl/versions/3")).status_code == 404
    renamed = await client.put("/api/v1/workflows/other", content=DEFINITION, headers=YAML)
    assert renamed.status_code == 422


async def test_versions_are_listed_page_by_page(client: httpx.AsyncClient) -> None:
    for number in range(5):
        text = DEFINITION.replace("name: etl", f"name: etl\ndescription: take {number}")
        stored = await client.put("/api/v1/workflows/etl", content=text, headers=YAML)
        assert stored.status_code in (200, 201), stored.text
    listed: list[dict[str, object]] = []
    token, pages = None, 0
    while True:
        params = {"page_size": 2} | ({"page_token": token} if token else {})
        page = (await client.get("/api/v1/workflows/etl/versions", params=params)).json()
        listed, token, pages = listed + page["versions"], page["next_page_token"], pages + 1
        if not token:
            break
    assert [v["version"] for v in listed] == [1, 2, 3, 4, 5]
    assert pages == 3
    first = (await client.get("/api/v1/workflows/etl/versions?page_size=1")).json()
    other = DEFINITION.replace("name: etl", "name: other")
    assert (await client.put("/api/v1/workflows/other", content=other, headers=YAML)).is_success
    elsewhere = await client.get(
        "/api/v1/workflows/other/versions", params={"page_token": first["next_page_token"]}
    )
    assert elsewhere.status_code == 400
    assert elsewhere.json()["type"].endswith("invalid-page-token")
    missing = await client.get("/api/v1/workflows/nothing/versions")
    assert missing.status_code == 404


async def test_put_creates_a_missing_workflow(client: httpx.AsyncClient) -> None:
    response = await client.put("/api/v1/workflows/etl", content=DEFINITION, headers=YAML)
    assert (response.status_code, response.json()["version"]) == (201, 1)


async def test_runs_pin_the_version_they_started_with(client: httpx.AsyncClient) -> None:
    await create(client)
    first = await client.post("/api/v1/workflows/etl/runs", json={"input": {"source": "s"}})
    changed_text = DEFINITION.replace("type: noop", "type: sleep")
    await client.put("/api/v1/workflows/etl", content=changed_text, headers=YAML)
    second = await client.post("/api/v1/workflows/etl/runs", json={"input": {"source": "s"}})
    assert (first.json()["version"], second.json()["version"]) == (1, 2)
    pinned = (await client.get(f"/api/v1/runs/{first.json()['run_id']}")).json()
    assert pinned["version"] == 1


async def test_archive_hides_the_workflow_and_refuses_runs(client: httpx.AsyncClient) -> None:
    await create(client)
    before = await client.post("/api/v1/workflows/etl/runs", json={"input": {"source": "s"}})
    assert before.status_code == 201
    assert (await client.delete("/api/v1/workflows/etl")).status_code == 204
    fetched = (await client.get("/api/v1/workflows/etl")).json()
    assert fetched["archived"] is True
    listed = (await client.get("/api/v1/workflows")).json()["workflows"]
    assert listed == []
    with_archived = await client.get("/api/v1/workflows", params={"include_archived": True})
    assert [w["name"] for w in with_archived.json()["workflows"]] == ["etl"]
    run = await client.post("/api/v1/workflows/etl/runs", json={"input": {"source": "s"}})
    assert run.status_code == 409
    assert (await client.delete("/api/v1/workflows/ghost")).status_code == 404


async def test_another_tenant_sees_nothing(client: httpx.AsyncClient) -> None:
    await create(client)
    run = await client.post("/api/v1/workflows/etl/runs", json={"input": {"source": "s"}})
    other = gateway_headers(tenant="globex")
    assert (await client.get("/api/v1/workflows/etl", headers=other)).status_code == 404
    assert (await client.get("/api/v1/workflows", headers=other)).json()["workflows"] == []
    run_url = f"/api/v1/runs/{run.json()['run_id']}"
    assert (await client.get(run_url, headers=other)).status_code == 404
    assert (await client.post(f"{run_url}/cancel", headers=other)).status_code == 404
    started = await client.post(
        "/api/v1/workflows/etl/runs", json={"input": {"source": "s"}}, headers=other
    )
    assert started.status_code == 404
    # The other tenant may use the same name for its own workflow.
    mine = await client.post("/api/v1/workflows", content=DEFINITION, headers={**YAML, **other})
    assert mine.status_code == 201


async def test_requests_without_the_gateway_headers_are_refused(
    client: httpx.AsyncClient,
) -> None:
    bare = httpx.Headers(
        {k: v for k, v in client.headers.items() if not k.startswith("x-interlock")}
    )
    client.headers = bare
    response = await client.get("/api/v1/workflows")
    assert response.status_code == 401
    assert (await client.get("/api/v1/workflows/schema")).status_code == 401


async def test_made_up_identity_headers_are_refused(client: httpx.AsyncClient) -> None:
    # What anyone on the network could send straight to the service's port: a viewer
    # once created a workflow this way.
    client.headers = httpx.Headers(
        {
            "x-interlock-principal": "mallory",
            "x-interlock-tenant": "acme",
            "x-interlock-roles": "admin",
        }
    )
    created = await client.post("/api/v1/workflows", content=DEFINITION, headers=YAML)
    assert created.status_code == 401
    assert (await client.get("/api/v1/workflows")).status_code == 401


async def test_the_schema_is_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/workflows/schema")
    assert response.status_code == 200
    schema = json.loads(response.content)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert "delay" in schema["$defs"]["task"]["properties"]["type"]["enum"]


def _forge(token: str, key: list[object]) -> str:
    """``token`` with its sort key replaced, its filter digest kept (what a client can do)."""
    body = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    body["k"] = key
    return base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")


async def test_list_filters_by_prefix_and_label_and_pages(client: httpx.AsyncClient) -> None:
    for index in range(7):
        team = "data" if index % 2 == 0 else "web"
        text = DEFINITION.replace("name: etl", f"name: etl-{index}").replace(
            "team: data", f"team: {team}"
        )
        assert (await create(client, text)).status_code == 201
    await create(client, DEFINITION.replace("name: etl", "name: other"))
    names: list[str] = []
    token = None
    while True:
        params: dict[str, str | int] = {"name_prefix": "etl-", "label": "team=data", "page_size": 2}
        if token:
            params["page_token"] = token
        page = (await client.get("/api/v1/workflows", params=params)).json()
        names += [w["name"] for w in page["workflows"]]
        token = page["next_page_token"]
        if token is None:
            break
    assert names == ["etl-0", "etl-2", "etl-4", "etl-6"]
    bad = await client.get("/api/v1/workflows", params={"page_token": "garbage"})
    assert bad.status_code == 400
    first = await client.get("/api/v1/workflows", params={"page_size": 1})
    real = first.json()["next_page_token"]
    forged_keys: list[list[object]] = [[123], ["etl\x00"], ["etl", "extra"]]
    for forged_key in forged_keys:
        forged = await client.get(
            "/api/v1/workflows", params={"page_size": 1, "page_token": _forge(real, forged_key)}
        )
        assert forged.status_code == 400, forged.text
        assert forged.json()["type"] == "urn:interlock:problem:invalid-page-token"
    bad_label = await client.get("/api/v1/workflows", params={"label": "nolabel"})
    assert bad_label.status_code == 400


async def test_a_new_version_s_input_schema_applies_to_the_next_start(
    client: httpx.AsyncClient,
) -> None:
    await create(client)
    runs = "/api/v1/workflows/etl/runs"
    assert (await client.post(runs, json={"input": {"source": "s"}})).status_code == 201
    relaxed = DEFINITION.replace("required: [source], ", "")
    assert (
        await client.put("/api/v1/workflows/etl", content=relaxed, headers=YAML)
    ).status_code == 201
    loose = await client.post(runs, json={"input": {}})  # invalid for v1, valid for v2
    assert (loose.status_code, loose.json()["version"]) == (201, 2)
    strict = relaxed.replace("properties:", "required: [region], properties:")
    assert (
        await client.put("/api/v1/workflows/etl", content=strict, headers=YAML)
    ).status_code == 201
    refused = await client.post(runs, json={"input": {"source": "s"}})  # valid for v2, not v3
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["pointer"] == "/input"
