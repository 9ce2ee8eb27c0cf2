"""Streams: a broken log stream resumes and ends on ``end``; artifacts flow through files.

The server is an ``httpx.MockTransport`` handler: this checks the client's own logic
(cursor, reconnection, end; multipart upload, download to a file), which no server
behaviour changes.
"""

from __future__ import annotations

import hashlib

import httpx

from interlock.client import Client

LINE = (
    '{{"time":"2026-12-05T09:00:0{n}Z","level":"info","task_id":"a","attempt":1,'
    '"seq":{n},"message":"line {n}"}}'
)


def test_a_broken_stream_resumes_from_the_last_event_id_without_loss_or_repeat() -> None:
    seen_cursors: list[str | None] = []

    def serve(request: httpx.Request) -> httpx.Response:
        cursor = request.headers.get("last-event-id")
        seen_cursors.append(cursor)
        assert request.headers["authorization"] == "Bearer ilk_test"
        if cursor is None:  # two lines, then the connection ends without `end`
            body = (
                f"id: c1\ndata: {LINE.format(n=1)}\n\n: heartbeat\n\n"
                f"id: c2\ndata: {LINE.format(n=2)}\n\n"
            )
        else:
            body = f"id: c3\ndata: {LINE.format(n=3)}\n\nevent: end\ndata: {{}}\n\n"
        return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})

    http = httpx.Client(base_url="http://gateway", transport=httpx.MockTransport(serve))
    with Client("http://gateway", api_key="ilk_test", http=http) as client:
        lines = list(client.logs.stream("run-1"))
    assert [line.message for line in lines] == ["line 1", "line 2", "line 3"]
    assert seen_cursors == [None, "c2"]


def test_artifacts_upload_and_download_as_streams_from_and_to_files(tmp_path) -> None:
    source = tmp_path / "report.csv"
    source.write_bytes(b"a,b\n" * 50_000)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    received: dict[str, bytes] = {}

    def serve(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            received["body"] = request.read()
            received["type"] = request.headers["content-type"].encode()
            return httpx.Response(
                201,
                json={"artifact_id": "a1", "run_id": "r1", "name": "report.csv", "sha256": digest},
            )
        assert request.url.path == "/api/v1/artifacts/a1/content"
        return httpx.Response(200, content=source.read_bytes())

    http = httpx.Client(base_url="http://gateway", transport=httpx.MockTransport(serve))
    target = tmp_path / "copy.csv"
    with Client("http://gateway", api_key="ilk_test", http=http) as client:
        artifact = client.artifacts.upload("r1", source, task_id="export")
        assert artifact.artifact_id == "a1"
        assert client.artifacts.download("a1", target) == target
    assert received["type"].startswith(b"multipart/form-data")
    for field in (b'name="run_id"\r\n\r\nr1', b'name="task_id"\r\n\r\nexport', digest.encode()):
        assert field in received["body"]
    assert b'filename="report.csv"' in received["body"]
    assert target.read_bytes() == source.read_bytes()
    assert {p.name for p in tmp_path.iterdir()} == {"report.csv", "copy.csv"}  # no .part left
