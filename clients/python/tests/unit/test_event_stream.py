"""A broken log stream resumes after the last event received, and ends on ``end``.

The server is an ``httpx.MockTransport`` handler: this checks the client's own logic
(cursor, reconnection, end), which no server behaviour changes.
"""

from __future__ import annotations

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
