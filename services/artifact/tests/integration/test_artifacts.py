"""Uploads, downloads, pre-signed uploads, lists and limits against real PostgreSQL and S3."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from typing import Any

import httpx
import pytest
from minio import Minio

from interlock.artifact import ArtifactSettings

from .conftest import CREDENTIAL, Runs, gateway_headers, upload

pytestmark = pytest.mark.integration


async def test_an_upload_round_trips_with_its_sha256(
    client: httpx.AsyncClient, runs: tuple[Runs, str], s3: Minio, settings: ArtifactSettings
) -> None:
    run_id = runs[0].new()
    data = b"month,total\n2026-11,42\n"
    digest = hashlib.sha256(data).hexdigest()
    created = await upload(
        client, run_id, "report.csv", data, task_id="build", sha256=digest, labels='{"k": "v"}'
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["state"], body["size_bytes"], body["sha256"]) == ("available", len(data), digest)
    assert (body["name"], body["task_id"], body["labels"]) == ("report.csv", "build", {"k": "v"})
    # The object's key is predictable: tenant/run/task/artifact id.
    key = f"acme/{run_id}/build/{body['artifact_id']}"
    assert s3.get_object(settings.s3_bucket, key).read() == data

    content = await client.get(f"/api/v1/artifacts/{body['artifact_id']}/content")
    assert content.status_code == 200
    assert content.content == data
    assert content.headers["x-content-sha256"] == digest
    assert content.headers["content-disposition"] == (
        "attachment; filename=\"report.csv\"; filename*=UTF-8''report.csv"
    )
    record = await client.get(f"/api/v1/artifacts/{body['artifact_id']}")
    assert record.json() == body


async def test_a_large_upload_goes_in_parts_and_ranges_are_served(
    client: httpx.AsyncClient, runs: tuple[Runs, str], s3: Minio, settings: ArtifactSettings
) -> None:
    run_id = runs[0].new()
    data = os.urandom(9 * 1024 * 1024 + 123)  # above the 8 MiB part size
    created = await upload(client, run_id, "weights.bin", data)
    assert created.status_code == 201, created.text
    artifact = created.json()
    assert artifact["sha256"] == hashlib.sha256(data).hexdigest()
    key = f"acme/{run_id}/-/{artifact['artifact_id']}"
    # A multipart upload's ETag ends in -<parts>.
    assert str(s3.stat_object(settings.s3_bucket, key).etag).endswith("-2")

    url = f"/api/v1/artifacts/{artifact['artifact_id']}/content"
    part = await client.get(url, headers={"range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.content == data[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(data)}"
    tail = await client.get(url, headers={"range": "bytes=-10"})
    assert (tail.status_code, tail.content) == (206, data[-10:])
    beyond = await client.get(url, headers={"range": f"bytes={len(data)}-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-type"] == "application/problem+json"


async def test_a_download_the_gateway_follows_is_handed_to_s3(
    client: httpx.AsyncClient, runs: tuple[Runs, str], s3: Minio, settings: ArtifactSettings
) -> None:
    data = b"0123456789" * 100
    created = await upload(client, runs[0].new(), "digits.txt", data)
    assert created.status_code == 201, created.text
    artifact = created.json()
    url = f"/api/v1/artifacts/{artifact['artifact_id']}/content"
    follows = {"x-interlock-gateway-redirect": "follow"}

    handed = await client.get(url, headers=follows)
    assert handed.status_code == 302
    assert handed.headers["x-interlock-content-sha256"] == artifact["sha256"]
    location = httpx.URL(handed.headers["location"])
    assert location.path.startswith(f"/{settings.s3_bucket}/acme/")
    # Signed for S3's host: S3 answers it with the artifact's name and type.
    on_s3 = httpx.URL(f"http://{settings.s3_endpoint}").copy_with(raw_path=location.raw_path)
    async with httpx.AsyncClient(trust_env=False) as anonymous:
        answer = await anonymous.get(on_s3)
    assert (answer.status_code, answer.content) == (200, data)
    assert answer.headers["content-disposition"].startswith('attachment; filename="digits.txt"')

    # A Range S3 reads as the service does goes too; one the service ignores is streamed.
    assert (await client.get(url, headers={**follows, "range": "bytes=5-9"})).status_code == 302
    several = await client.get(url, headers={**follows, "range": "bytes=0-1,5-6"})
    assert (several.status_code, several.content) == (200, data)
    beyond = await client.get(url, headers={**follows, "range": f"bytes={len(data)}-"})
    assert beyond.status_code == 416
    other = {**follows, **gateway_headers(tenant="globex")}
    assert (await client.get(url, headers=other)).status_code == 404


async def test_a_wrong_sha256_is_422_and_nothing_is_kept(
    client: httpx.AsyncClient, runs: tuple[Runs, str], s3: Minio, settings: ArtifactSettings
) -> None:
    run_id = runs[0].new()
    refused = await upload(client, run_id, "a.txt", b"hello", sha256="0" * 64)
    assert refused.status_code == 422
    assert refused.json()["type"].endswith("checksum-mismatch")
    assert list(s3.list_objects(settings.s3_bucket, recursive=True)) == []
    listed = await client.get("/api/v1/artifacts", params={"run_id": run_id})
    assert listed.json()["artifacts"] == []


async def test_a_field_after_the_file_fails_the_upload(
    client: httpx.AsyncClient, runs: tuple[Runs, str], s3: Minio, settings: ArtifactSettings
) -> None:
    boundary = "b0undary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="run_id"\r\n\r\n{runs[0].new()}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\n'
        f"data\r\n"
        f'--{boundary}\r\nContent-Disposition: form-data; name="sha256"\r\n\r\n{"0" * 64}\r\n'
        f"--{boundary}--\r\n"
    )
    refused = await client.post(
        "/api/v1/artifacts",
        content=body.encode(),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert refused.status_code == 422, refused.text
    assert "'sha256'" in refused.json()["detail"]
    assert list(s3.list_objects(settings.s3_bucket, recursive=True)) == []
    no_file = await client.post("/api/v1/artifacts", data={"run_id": "x"}, files={"other": b"x"})
    assert no_file.status_code == 422
    not_a_form = await client.post(
        "/api/v1/artifacts", content=b"x", headers={"content-type": "text/plain"}
    )
    assert not_a_form.status_code == 422


@pytest.mark.parametrize(
    "name",
    [
        "../etc/passwd",
        "a/b",
        "a\\b",
        "..",
        ".",
        "bell\x07",
        "new\nline",
        "rtl\u202eexe.txt",
        "x" * 256,
    ],
)
async def test_unsafe_names_are_422(
    client: httpx.AsyncClient, runs: tuple[Runs, str], name: str
) -> None:
    refused = await upload(client, runs[0].new(), name, b"x")
    assert refused.status_code == 422, refused.text
    assert refused.json()["type"].endswith("invalid-artifact")


async def test_a_name_with_quotes_and_unicode_downloads_under_a_safe_filename(
    client: httpx.AsyncClient, runs: tuple[Runs, str]
) -> None:
    created = await upload(client, runs[0].new(), 'résumé "final".txt', b"x")
    assert created.status_code == 201, created.text
    content = await client.get(f"/api/v1/artifacts/{created.json()['artifact_id']}/content")
    assert content.headers["content-disposition"] == (
        'attachment; filename="r_sum_ _final_.txt"; '
        "filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22.txt"
    )


async def test_size_limit_and_quota_are_413(
    app_and_client: tuple[Any, httpx.AsyncClient],
    runs: tuple[Runs, str],
    s3: Minio,
    settings: ArtifactSettings,
) -> None:
    _, client = app_and_client
    run_id = runs[0].new()
    too_large = await upload(client, run_id, "big.bin", b"x" * (32 * 1024 * 1024 + 1))
    assert too_large.status_code == 413
    assert too_large.json()["type"].endswith("artifact-too-large")
    for index in range(2):  # 2 x 30 MiB of a 64 MiB quota
        kept = await upload(client, run_id, f"part{index}.bin", b"y" * (30 * 1024 * 1024))
        assert kept.status_code == 201, kept.text
    over = await upload(client, run_id, "one-more.bin", b"z" * (5 * 1024 * 1024))
    assert over.status_code == 413
    assert over.json()["type"].endswith("quota-exceeded")
    ticket = await client.post(
        "/api/v1/artifacts/uploads",
        json={"run_id": run_id, "name": "p.bin", "size_bytes": 5 * 1024 * 1024, "sha256": "0" * 64},
    )
    assert ticket.status_code == 413
    assert len(list(s3.list_objects(settings.s3_bucket, recursive=True))) == 2
    # Another tenant's quota is its own.
    theirs = await upload(
        client, runs[0].new("globex"), "fine.bin", b"ok", headers=gateway_headers("globex")
    )
    assert theirs.status_code == 201


async def test_an_unknown_run_or_another_tenants_run_is_404(
    client: httpx.AsyncClient, runs: tuple[Runs, str]
) -> None:
    unknown = await upload(client, str(uuid.uuid4()), "a.txt", b"x")
    assert unknown.status_code == 404
    assert unknown.json()["type"].endswith("run-not-found")
    theirs = await upload(client, runs[0].new("globex"), "a.txt", b"x")
    assert theirs.status_code == 404
    not_a_run = await upload(client, "not-a-uuid", "a.txt", b"x")
    assert not_a_run.status_code == 422


async def test_tenants_see_only_their_own_artifacts(
    client: httpx.AsyncClient, runs: tuple[Runs, str]
) -> None:
    created = await upload(client, runs[0].new(), "mine.txt", b"mine")
    artifact_id = created.json()["artifact_id"]
    other = {**gateway_headers("globex", role="admin")}
    for path in ("", "/content", "/url"):
        response = await client.get(f"/api/v1/artifacts/{artifact_id}{path}", headers=other)
        assert response.status_code == 404, path
    assert (
        await client.delete(f"/api/v1/artifacts/{artifact_id}", headers=other)
    ).status_code == 404
    listed = await client.get("/api/v1/artifacts", headers=other)
    assert listed.json()["artifacts"] == []
    viewer = await client.get(
        f"/api/v1/artifacts/{artifact_id}/content", headers=gateway_headers(role="viewer")
    )
    assert viewer.content == b"mine"


async def test_lists_page_newest_first_with_filters(
    client: httpx.AsyncClient, runs: tuple[Runs, str]
) -> None:
    run_id = runs[0].new()
    names = [f"log-{index}.txt" for index in range(5)]
    for name in names:
        assert (await upload(client, run_id, name, name.encode(), task_id="t")).status_code == 201
    assert (await upload(client, run_id, "other.txt", b"o")).status_code == 201
    seen: list[str] = []
    token = None
    while True:
        params: dict[str, Any] = {"run_id": run_id, "name_prefix": "log-", "page_size": 2}
        if token:
            params["page_token"] = token
        page = (await client.get("/api/v1/artifacts", params=params)).json()
        seen += [item["name"] for item in page["artifacts"]]
        token = page["next_page_token"]
        if token is None:
            break
    assert seen == names[::-1]
    by_task = (
        await client.get("/api/v1/artifacts", params={"task_id": "t", "run_id": run_id})
    ).json()
    assert len(by_task["artifacts"]) == 5
    forged = await client.get("/api/v1/artifacts", params={"page_token": "garbage"})
    assert forged.status_code == 400


async def test_delete_removes_the_row_and_the_bytes(
    client: httpx.AsyncClient, runs: tuple[Runs, str], s3: Minio, settings: ArtifactSettings
) -> None:
    created = await upload(client, runs[0].new(), "gone.txt", b"bye")
    artifact_id = created.json()["artifact_id"]
    assert (await client.delete(f"/api/v1/artifacts/{artifact_id}")).status_code == 204
    assert (await client.delete(f"/api/v1/artifacts/{artifact_id}")).status_code == 404
    assert (await client.get(f"/api/v1/artifacts/{artifact_id}")).status_code == 404
    assert list(s3.list_objects(settings.s3_bucket, recursive=True)) == []


async def test_a_presigned_upload_is_completed_after_its_checks(
    client: httpx.AsyncClient, runs: tuple[Runs, str], s3: Minio, settings: ArtifactSettings
) -> None:
    run_id = runs[0].new()
    data = os.urandom(300_000)
    request = {
        "run_id": run_id,
        "name": "model.bin",
        "size_bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    ticket = await client.post("/api/v1/artifacts/uploads", json=request)
    assert ticket.status_code == 201, ticket.text
    artifact_id = ticket.json()["artifact_id"]
    complete = f"/api/v1/artifacts/{artifact_id}/complete"
    assert (await client.post(complete)).status_code == 409  # nothing PUT yet
    pending = await client.get(f"/api/v1/artifacts/{artifact_id}/content")
    assert pending.status_code == 409
    # The URL points at the gateway; S3 takes it with the host it was signed for.
    url = httpx.URL(ticket.json()["upload_url"])
    async with httpx.AsyncClient(trust_env=False) as plain:
        put = await plain.put(f"http://{settings.s3_endpoint}{url.raw_path.decode()}", content=data)
    assert put.status_code == 200, put.text
    done = await client.post(complete)
    assert done.status_code == 200, done.text
    assert done.json()["state"] == "available"
    assert (await client.post(complete)).status_code == 409
    content = await client.get(f"/api/v1/artifacts/{artifact_id}/content")
    assert content.content == data

    wrong = await client.post("/api/v1/artifacts/uploads", json={**request, "name": "wrong.bin"})
    wrong_url = httpx.URL(wrong.json()["upload_url"])
    async with httpx.AsyncClient(trust_env=False) as plain:
        await plain.put(
            f"http://{settings.s3_endpoint}{wrong_url.raw_path.decode()}", content=data[:-1] + b"!"
        )
    refused = await client.post(f"/api/v1/artifacts/{wrong.json()['artifact_id']}/complete")
    assert refused.status_code == 422
    assert (await client.get(f"/api/v1/artifacts/{wrong.json()['artifact_id']}")).status_code == 404
    assert len(list(s3.list_objects(settings.s3_bucket, recursive=True))) == 1


async def test_download_url_lifetimes_are_bounded(
    client: httpx.AsyncClient, runs: tuple[Runs, str]
) -> None:
    created = await upload(client, runs[0].new(), "a.txt", b"x")
    url = f"/api/v1/artifacts/{created.json()['artifact_id']}/url"
    default = (await client.get(url)).json()
    assert "X-Amz-Expires=3600" in default["url"]
    assert default["url"].startswith("http://service/")  # the host the client asked
    assert (
        "X-Amz-Expires=604800"
        in (await client.get(url, params={"expires_in": 604800})).json()["url"]
    )
    for bad in (0, 604801):
        assert (await client.get(url, params={"expires_in": bad})).status_code == 422


async def test_ten_concurrent_uploads_all_land(
    client: httpx.AsyncClient, runs: tuple[Runs, str]
) -> None:
    run_id = runs[0].new()
    blobs = {f"c{index}.bin": os.urandom(200_000 + index) for index in range(10)}
    answers = await asyncio.gather(
        *(upload(client, run_id, name, data) for name, data in blobs.items())
    )
    assert [answer.status_code for answer in answers] == [201] * 10
    for answer in answers:
        body = answer.json()
        assert body["sha256"] == hashlib.sha256(blobs[body["name"]]).hexdigest()


async def test_workers_store_and_read_with_their_credential_only(
    client: httpx.AsyncClient, runs: tuple[Runs, str]
) -> None:
    run_id = str(uuid.uuid4())  # a worker is not asked whether the run exists
    path = f"/internal/v1/tenants/acme/runs/{run_id}/artifacts"
    worker = {
        "x-interlock-service-credential": CREDENTIAL,
        "content-type": "application/octet-stream",
    }
    refused = await client.put(
        f"{path}/out.txt", content=b"x", headers={**worker, "x-interlock-service-credential": "no"}
    )
    assert refused.status_code == 401, refused.text
    stored = await client.put(
        f"{path}/out.txt",
        params={"task_id": "t1", "attempt": 2},
        content=b"[1]",
        headers={**worker, "x-artifact-content-type": "application/json"},
    )
    assert stored.status_code == 201, stored.text
    assert (stored.json()["created_by"], stored.json()["attempt"]) == ("worker", 2)
    assert stored.json()["content_type"] == "application/json"
    await client.put(
        f"{path}/out.txt", params={"task_id": "t1", "attempt": 3}, content=b"second", headers=worker
    )
    newest = await client.get(f"{path}/out.txt", headers=worker)
    assert newest.content == b"second"
    by_id = await client.get(f"{path}/{stored.json()['artifact_id']}", headers=worker)
    assert by_id.content == b"[1]"
    other_tenant = await client.get(
        f"/internal/v1/tenants/globex/runs/{run_id}/artifacts/out.txt", headers=worker
    )
    assert other_tenant.status_code == 404


@pytest.mark.parametrize("escaped", ["nul\\u0000", "lone\\ud800"])
async def test_labels_postgresql_cannot_store_are_422(
    client: httpx.AsyncClient, runs: tuple[Runs, str], escaped: str
) -> None:
    labels = f'{{"k": "{escaped}"}}'
    refused = await upload(client, runs[0].new(), "a.bin", b"x", labels=labels)
    assert refused.status_code == 422, refused.text
    assert "labels" in refused.json()["detail"]
