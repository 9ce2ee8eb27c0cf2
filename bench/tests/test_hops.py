"""The lone runs' hop table, on events worked out by hand (no servers)."""

from datetime import UTC, datetime

from bench.hops import SeenEvent, hop_table

CREATED = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
T0 = CREATED.timestamp()


def _event(run_id: str, kind: str, built_ms: float, sent_ms: float) -> SeenEvent:
    return SeenEvent(
        run_id=run_id,
        type=f"io.interlock.{kind}.v1",
        built_s=T0 + built_ms / 1000,
        sent_s=T0 + sent_ms / 1000,
    )


def test_each_event_of_a_run_gets_a_row_in_the_order_built_with_medians_after_created_at() -> None:
    seen = [
        _event("a", "task.scheduled", 10, 12),
        _event("a", "workflow.started", 0, 2),
        _event("a", "task.scheduled", 30, 33),
        _event("b", "workflow.started", 2, 4),
        _event("b", "task.scheduled", 20, 22),
        _event("other", "workflow.started", 1, 1),  # not a measured run
    ]
    rows = hop_table([("a", CREATED), ("b", CREATED)], seen)
    assert [row["event"] for row in rows] == [
        "workflow.started#1",
        "task.scheduled#1",
        "task.scheduled#2",
    ]
    started, first, second = rows
    assert started == {
        "event": "workflow.started#1",
        "runs": 2,
        "built_ms": 1.0,
        "sent_ms": 3.0,
    }
    assert (first["runs"], first["built_ms"], first["sent_ms"]) == (2, 15.0, 17.0)
    assert (second["runs"], second["sent_ms"]) == (1, 33.0)


def test_an_event_read_twice_counts_once() -> None:
    twice = _event("a", "workflow.started", 0, 2)
    rows = hop_table([("a", CREATED)], [twice, twice])
    assert [(row["event"], row["runs"]) for row in rows] == [("workflow.started#1", 1)]
