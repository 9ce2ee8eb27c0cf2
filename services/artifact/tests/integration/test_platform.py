"""Artifacts through the real platform (`make up`'s stack on its own ports): the gateway,
IAM, the scheduler's run check, S3 behind the gateway, and a python task's uploads."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
import httpx
import pytest
from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped]
from botocore.config import Config  # type: ignore[import-untyped]
from botocore.httpsession import URLLib3Session  # type: ignore[import-untyped]

from interlock.devstack import PlatformStartError, running_platform
from interlock.devstack._stack import S3_BUCKET, Stack, StackSecrets

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

OFFSETS = (1150, 1225, 1325)
"""Port offsets tried in turn (no other stack of the tests uses them), all below the
ephemeral range, where outgoing connections take ports at random."""
TASKS = Path(__file__).parent / "tasks"
WORKFLOW = """\
name: artifact-demo
tasks:
  - id: report
    type: python
    params:
      function: artifact_demo.report
      args: {text: "hello artifacts"}
"""


@dataclass(frozen=True)
class Platform:
    stack: Stack
    token: str

    def client(self, *, token: str | None = None, timeout_s: float = 60) -> httpx.Client:
        headers = {} if token == "" else {"authorization": f"Bearer {token or self.token}"}
        return httpx.Client(
            base_url=self.stack.gateway_url, headers=headers, trust_env=False, timeout=timeout_s
        )


@pytest.fixture(scope="module")
def platform() -> Iterator[Platform]:
    settings = {
        "INTERLOCK_PYTHON_TASK_MODULES": json.dumps(["artifact_demo_tasks"]),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(TASKS), os.environ.get("PYTHONPATH")])),
    }
    try:
        with running_platform(OFFSETS, settings) as running:
            yield Platform(running.stack, running.login())
    except PlatformStartError as error:
        pytest.fail(f"the artifact platform did not start:\n{error}")


def _wait(predicate: Any, timeout_s: float = 90) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        result = predicate()
        if result:
            return result
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def finished_run(platform: Platform) -> dict[str, Any]:
    """A run of the python task that stores artifacts, once it has ended."""
    with platform.client() as client:
        defined = client.post(
            "/api/v1/workflows", content=WORKFLOW, headers={"content-type": "application/yaml"}
        )
        assert defined.status_code == 201, defined.text
        started = client.post("/api/v1/workflows/artifact-demo/runs", json={"input": {}})
        assert started.status_code == 201, started.text
        run_id = started.json()["run_id"]

        def ended() -> dict[str, Any] | None:
            run: dict[str, Any] = client.get(f"/api/v1/runs/{run_id}").json()
            return run if run["status"] in {"succeeded", "failed"} else None

        return _wait(ended)


def _upload(client: httpx.Client, run_id: str, name: str, data: bytes) -> httpx.Response:
    return client.post(
        "/api/v1/artifacts",
        data={"run_id": run_id, "name": name, "sha256": hashlib.sha256(data).hexdigest()},
        files={"file": (name, data)},
    )


def test_a_python_task_stores_artifacts_that_download_through_the_gateway(
    platform: Platform, finished_run: dict[str, Any]
) -> None:
    assert finished_run["status"] == "succeeded", finished_run
    output = finished_run["tasks"][0]["output"]
    assert output["read_back"] == "hello artifacts"
    report, note = output["report"], output["note"]
    assert report["sha256"] == hashlib.sha256(b"hello artifacts").hexdigest()
    assert (report["name"], report["size"]) == ("report.txt", 15)
    with platform.client() as client:
        content = client.get(f"/api/v1/artifacts/{report['artifact_id']}/content")
        assert (content.status_code, content.content) == (200, b"hello artifacts")
        assert (
            client.get(f"/api/v1/artifacts/{note['artifact_id']}/content").text == "HELLO ARTIFACTS"
        )
        record = client.get(f"/api/v1/artifacts/{note['artifact_id']}").json()
        assert (record["task_id"], record["attempt"], record["created_by"]) == (
            "report",
            1,
            "worker",
        )
        assert record["content_type"] == "text/plain; charset=utf-8"
        listed = client.get("/api/v1/artifacts", params={"run_id": finished_run["run_id"]})
        assert {item["name"] for item in listed.json()["artifacts"]} == {"report.txt", "note.txt"}


def test_uploads_through_the_gateway_stream_large_files_and_run_concurrently(
    platform: Platform, finished_run: dict[str, Any]
) -> None:
    run_id = finished_run["run_id"]
    large = os.urandom(24 * 1024 * 1024)  # far above the gateway's 1 MiB body limit
    with platform.client(timeout_s=120) as client:
        created = _upload(client, run_id, "large.bin", large)
        assert created.status_code == 201, created.text
        # The gateway follows the service's hand-off to S3 itself: the client sees 200.
        back = client.get(f"/api/v1/artifacts/{created.json()['artifact_id']}/content")
        assert back.status_code == 200
        assert hashlib.sha256(back.content).digest() == hashlib.sha256(large).digest()
        assert back.headers["x-content-sha256"] == hashlib.sha256(large).hexdigest()
        assert back.headers["content-disposition"].startswith('attachment; filename="large.bin"')
        assert back.headers["x-content-type-options"] == "nosniff"
        ranged = client.get(
            f"/api/v1/artifacts/{created.json()['artifact_id']}/content",
            headers={"range": "bytes=1000-1999"},
        )
        assert (ranged.status_code, ranged.content) == (206, large[1000:2000])
        assert ranged.headers["content-range"] == f"bytes 1000-1999/{len(large)}"
        several = client.get(
            f"/api/v1/artifacts/{created.json()['artifact_id']}/content",
            headers={"range": "bytes=0-0,5-5"},
        )
        assert (several.status_code, len(several.content)) == (200, len(large))

    async def upload_ten() -> list[httpx.Response]:
        headers = {"authorization": f"Bearer {platform.token}"}
        async with httpx.AsyncClient(
            base_url=platform.stack.gateway_url, headers=headers, trust_env=False, timeout=60
        ) as client:
            return await asyncio.gather(
                *(
                    client.post(
                        "/api/v1/artifacts",
                        data={"run_id": run_id, "name": f"c{index}.bin"},
                        files={"file": (f"c{index}.bin", bytes([index]) * 300_000)},
                    )
                    for index in range(10)
                )
            )

    answers = asyncio.run(upload_ten())
    assert [answer.status_code for answer in answers] == [201] * 10, [a.text for a in answers]
    for answer in answers:
        index = int(answer.json()["name"][1:-4])
        assert answer.json()["sha256"] == hashlib.sha256(bytes([index]) * 300_000).hexdigest()


def test_presigned_urls_work_without_credentials_and_refuse_tampering(
    platform: Platform, finished_run: dict[str, Any]
) -> None:
    run_id = finished_run["run_id"]
    with platform.client() as client:
        first = _upload(client, run_id, "first.txt", b"first artifact").json()["artifact_id"]
        second = _upload(client, run_id, "second.txt", b"second artifact").json()["artifact_id"]
        url = client.get(f"/api/v1/artifacts/{first}/url", params={"expires_in": 300}).json()["url"]
        other_url = client.get(f"/api/v1/artifacts/{second}/url").json()["url"]
        short = client.get(f"/api/v1/artifacts/{first}/url", params={"expires_in": 1}).json()["url"]
    assert url.startswith(platform.stack.gateway_url + "/interlock-artifacts/")
    with platform.client(token="") as anonymous:
        plain = anonymous.get(url)
        assert (plain.status_code, plain.content) == (200, b"first artifact")
        assert plain.headers["content-disposition"].startswith('attachment; filename="first.txt"')
        signature = httpx.URL(url).params["X-Amz-Signature"]
        tampered = url.replace(signature, signature[:-1] + ("0" if signature[-1] != "0" else "1"))
        assert anonymous.get(tampered).status_code == 403
        # The signature of one object does not open another.
        other_path = httpx.URL(other_url).path
        assert anonymous.get(str(httpx.URL(url).copy_with(path=other_path))).status_code == 403
        # Without a signature the gateway does not forward to S3 at all.
        assert anonymous.get(str(httpx.URL(url).copy_with(query=None))).status_code == 404
        assert anonymous.delete(url).status_code == 404
        time.sleep(2.1)
        assert anonymous.get(short).status_code == 403
    # An S3 client nobody on the team wrote (botocore, under boto3) downloads it too.
    response = URLLib3Session().send(AWSRequest(method="GET", url=url).prepare())
    assert (response.status_code, response.content) == (200, b"first artifact")


def test_urls_boto3_signs_for_s3_pass_through_the_gateway(
    platform: Platform, finished_run: dict[str, Any]
) -> None:
    """The gateway's S3 route is plain S3: a URL boto3 presigns for S3 works through it."""
    with platform.client() as client:
        artifact_id = _upload(client, finished_run["run_id"], "b.txt", b"boto").json()[
            "artifact_id"
        ]
    key = f"default/{finished_run['run_id']}/-/{artifact_id}"
    secrets = StackSecrets.load_or_create(platform.stack.secrets_file)[0]
    s3 = boto3.client(
        "s3",
        endpoint_url=f"http://{platform.stack.s3_endpoint}",
        aws_access_key_id=secrets.s3_access_key,
        aws_secret_access_key=secrets.s3_secret_key,
        region_name="us-east-1",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    signed = httpx.URL(
        s3.generate_presigned_url(
            "get_object", Params={"Bucket": S3_BUCKET, "Key": key}, ExpiresIn=60
        )
    )
    through_gateway = httpx.URL(platform.stack.gateway_url).copy_with(raw_path=signed.raw_path)
    with platform.client(token="") as anonymous:
        response = anonymous.get(str(through_gateway))
    assert (response.status_code, response.content) == (200, b"boto")


def test_a_presigned_upload_through_the_gateway(
    platform: Platform, finished_run: dict[str, Any]
) -> None:
    data = os.urandom(2 * 1024 * 1024)
    with platform.client() as client:
        ticket = client.post(
            "/api/v1/artifacts/uploads",
            json={
                "run_id": finished_run["run_id"],
                "name": "direct.bin",
                "size_bytes": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            },
        )
        assert ticket.status_code == 201, ticket.text
        with platform.client(token="") as anonymous:
            put = anonymous.put(ticket.json()["upload_url"], content=data)
        assert put.status_code == 200, put.text
        artifact_id = ticket.json()["artifact_id"]
        done = client.post(f"/api/v1/artifacts/{artifact_id}/complete")
        assert done.status_code == 200, done.text
        assert client.get(f"/api/v1/artifacts/{artifact_id}/content").content == data


def test_the_run_must_be_the_callers_and_viewers_cannot_write(
    platform: Platform, finished_run: dict[str, Any]
) -> None:
    with platform.client() as client:
        unknown = _upload(client, "6f1c3c5e-8a3b-4d4c-9a53-0d7c1f0a9b11", "x.txt", b"x")
        assert unknown.status_code == 404
        assert unknown.json()["type"].endswith("run-not-found")
        bad = _upload(client, finished_run["run_id"], "../x.txt", b"x")
        assert bad.status_code == 422
        created = client.post(
            "/api/v1/users",
            json={
                "username": "artifact-viewer",
                "password": "viewer-password",
                "roles": ["viewer"],
            },
        )
        assert created.status_code == 201, created.text
    with platform.client(token="") as client:
        login = client.post(
            "/api/v1/auth/login",
            json={"username": "artifact-viewer", "password": "viewer-password"},
        )
    viewer = login.json()["access_token"]
    with platform.client(token=viewer) as client:
        assert client.get("/api/v1/artifacts").status_code == 200
        assert _upload(client, finished_run["run_id"], "v.txt", b"v").status_code == 403


def test_an_echo_task_stores_the_text_artifact_it_is_given(platform: Platform) -> None:
    workflow = (
        "name: echo-artifact\ntasks:\n  - id: say\n    type: echo\n"
        "    params: {lines: [hi], interval: 0, artifact: {name: greeting.txt, text: hello}}\n"
    )
    with platform.client() as client:
        defined = client.post(
            "/api/v1/workflows", content=workflow, headers={"content-type": "application/yaml"}
        )
        assert defined.status_code == 201, defined.text
        run_id = client.post("/api/v1/workflows/echo-artifact/runs", json={}).json()["run_id"]

        def ended() -> dict[str, Any] | None:
            run: dict[str, Any] = client.get(f"/api/v1/runs/{run_id}").json()
            return run if run["status"] in {"succeeded", "failed"} else None

        run = _wait(ended)
        assert run["status"] == "succeeded", run
        reference = run["tasks"][0]["output"]["artifact"]
        assert (reference["name"], reference["size"]) == ("greeting.txt", 5)
        assert reference["sha256"] == hashlib.sha256(b"hello").hexdigest()
        content = client.get(f"/api/v1/artifacts/{reference['artifact_id']}/content")
        assert (content.status_code, content.text) == (200, "hello")
