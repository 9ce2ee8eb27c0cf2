"""One definition of each operation serves both clients, and calls say what they send."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime

from interlock.client import AsyncClient, Client
from interlock.client._calls import IDEMPOTENCY_HEADER
from interlock.client._operations import _Descriptor
from interlock.client._runs import Runs
from interlock.client._scheduler import Timers


def test_sync_and_async_methods_share_the_name_docstring_and_signature() -> None:
    sync, asynchronous = Client("http://gateway"), AsyncClient("http://gateway")
    try:
        checked = 0
        for resource in ("runs", "workflows", "logs", "artifacts", "users", "dead_letters"):
            operations = vars(type(getattr(sync, resource)))
            for name in [n for n, v in operations.items() if isinstance(v, _Descriptor)]:
                one = getattr(getattr(sync, resource), name)
                other = getattr(getattr(asynchronous, resource), name)
                assert one.__doc__ and one.__doc__ == other.__doc__
                assert inspect.signature(one) == inspect.signature(other)
                checked += 1
        assert checked > 20
    finally:
        sync.close()


def test_a_start_always_carries_an_idempotency_key_and_so_may_be_retried() -> None:
    build = vars(Runs)["start"]._build
    given = build(None, "nightly", {"a": 1}, idempotency_key="k-1")
    generated = build(None, "nightly")
    assert given.headers[IDEMPOTENCY_HEADER] == "k-1"
    assert generated.headers[IDEMPOTENCY_HEADER]
    assert generated.replayable
    assert given.path == "/api/v1/workflows/nightly/runs"
    assert given.json == {"input": {"a": 1}}


def test_names_in_paths_are_escaped() -> None:
    call = vars(Timers)["move"]._build(None, "run/1", "a b", datetime(2026, 1, 1, tzinfo=UTC))
    assert call.path == "/api/v1/runs/run%2F1/tasks/a%20b/timer"
    assert call.json == {"due_at": "2026-01-01T00:00:00+00:00"}
    assert not call.replayable
