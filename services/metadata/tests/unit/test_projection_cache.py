"""The projection's kept documents: the latest of each open run only."""

from __future__ import annotations

from interlock.metadata.projection_cache import DocumentCache


def _doc(run_id: str, status: str = "running", rev: int = 1) -> dict[str, object]:
    return {"_id": run_id, "status": status, "rev": rev}


def test_keeps_the_latest_document_of_each_open_run() -> None:
    cache = DocumentCache()
    cache.put({"a": _doc("a"), "b": _doc("b")})
    cache.put({"a": _doc("a", rev=2)})

    assert cache.kept(["a", "b", "c"]) == {"a": _doc("a", rev=2), "b": _doc("b")}


def test_a_finished_run_is_forgotten() -> None:
    cache = DocumentCache()
    cache.put({"a": _doc("a"), "b": _doc("b")})
    cache.put({"a": _doc("a", status="succeeded"), "b": _doc("b", status="failed")})

    assert cache.kept(["a", "b"]) == {}
    assert len(cache) == 0


def test_forget_and_clear() -> None:
    cache = DocumentCache()
    cache.put({"a": _doc("a"), "b": _doc("b"), "c": _doc("c")})
    cache.forget(["a", "z"])
    assert set(cache.kept(["a", "b", "c"])) == {"b", "c"}
    cache.clear()
    assert len(cache) == 0
