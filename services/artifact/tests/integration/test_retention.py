"""The retention collector and the orphan sweeper, against real PostgreSQL and S3."""

from __future__ import annotations

import asyncio
import hashlib
import io

import pytest
from minio import Minio

from interlock.artifact import ArtifactSettings, create_app
from interlock.artifact.domain import DependencyUnavailableError
from interlock.artifact.storage import ObjectStore
from interlock.common.testing import app_client

from .conftest import Runs, gateway_headers, upload

pytestmark = pytest.mark.integration


def _keys(s3: Minio, bucket: str) -> set[str]:
    return {item.object_name or "" for item in s3.list_objects(bucket, recursive=True)}


async def test_expired_artifacts_go_object_first_then_row(
    settings: ArtifactSettings, runs: tuple[Runs, str], s3: Minio
) -> None:
    app = create_app(settings)
    async with app_client(app) as client:
        client.headers.update(gateway_headers())
        run_id = runs[0].new()
        short = await upload(client, run_id, "short.txt", b"brief", retention="1s")
        kept = await upload(client, run_id, "kept.txt", b"long", retention="30d")
        assert short.status_code == kept.status_code == 201
        await asyncio.sleep(1.2)
        # Expired: hidden at once, even before the collector passes.
        short_id = short.json()["artifact_id"]
        assert (await client.get(f"/api/v1/artifacts/{short_id}")).status_code == 404
        expired, _ = await app.state.collector.pass_once()
        assert expired == 1
        kept_key = f"acme/{run_id}/-/{kept.json()['artifact_id']}"
        assert _keys(s3, settings.s3_bucket) == {kept_key}
        listed = (await client.get("/api/v1/artifacts", params={"run_id": run_id})).json()
        assert [item["name"] for item in listed["artifacts"]] == ["kept.txt"]


async def test_the_sweeper_removes_abandoned_uploads_and_objects_without_a_row(
    settings: ArtifactSettings, runs: tuple[Runs, str], s3: Minio
) -> None:
    app = create_app(settings.model_copy(update={"upload_grace_s": 1}))
    async with app_client(app) as client:
        client.headers.update(gateway_headers())
        run_id = runs[0].new()
        kept = await upload(client, run_id, "kept.txt", b"kept")
        assert kept.status_code == 201
        data = b"never completed"
        ticket = await client.post(
            "/api/v1/artifacts/uploads",
            json={
                "run_id": run_id,
                "name": "abandoned.bin",
                "size_bytes": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "expires_in": 1,
            },
        )
        assert ticket.status_code == 201
        abandoned_id = ticket.json()["artifact_id"]
        abandoned_key = f"acme/{run_id}/-/{abandoned_id}"
        s3.put_object(settings.s3_bucket, abandoned_key, io.BytesIO(data), len(data))
        # A crash between the S3 write and the row leaves an object no row holds.
        orphan_key = f"acme/{run_id}/-/00000000-0000-4000-8000-000000000000"
        s3.put_object(settings.s3_bucket, orphan_key, io.BytesIO(b"orphan"), 6)
        young = await app.state.collector.pass_once()
        assert young == (0, 0)  # within the grace period nothing is touched
        await asyncio.sleep(2.2)
        _, orphans = await app.state.collector.pass_once()
        assert orphans == 2  # the abandoned upload (row and object) and the orphan
        kept_key = f"acme/{run_id}/-/{kept.json()['artifact_id']}"
        assert _keys(s3, settings.s3_bucket) == {kept_key}
        assert (await client.get(f"/api/v1/artifacts/{abandoned_id}")).status_code == 404
        assert (
            await client.get(f"/api/v1/artifacts/{kept.json()['artifact_id']}")
        ).status_code == 200


async def test_an_object_s3_fails_to_delete_keeps_its_row_and_blocks_nothing(
    settings: ArtifactSettings, runs: tuple[Runs, str], s3: Minio, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(settings)
    async with app_client(app) as client:
        client.headers.update(gateway_headers())
        run_id = runs[0].new()
        stuck = await upload(client, run_id, "stuck.txt", b"stuck", retention="1s")
        other = await upload(client, run_id, "other.txt", b"other", retention="1s")
        stuck_key = f"acme/{run_id}/-/{stuck.json()['artifact_id']}"
        other_key = f"acme/{run_id}/-/{other.json()['artifact_id']}"
        remove = ObjectStore.remove
        failures = {stuck_key: 1}  # S3 refuses this delete once

        async def flaky_remove(self: ObjectStore, key: str) -> None:
            if failures.get(key):
                failures[key] -= 1
                raise DependencyUnavailableError("S3 refused the delete")
            await remove(self, key)

        monkeypatch.setattr(ObjectStore, "remove", flaky_remove)
        await asyncio.sleep(1.2)
        assert await app.state.collector.pass_once() == (1, 0)  # the other one went
        assert _keys(s3, settings.s3_bucket) == {stuck_key}
        assert other_key not in _keys(s3, settings.s3_bucket)
        assert await app.state.collector.pass_once() == (1, 0)  # retried next pass
        assert _keys(s3, settings.s3_bucket) == set()
