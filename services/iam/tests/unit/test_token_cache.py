import pytest

from interlock.iam.domain import TokenCache


def test_entries_expire_with_their_time() -> None:
    cache: TokenCache[str] = TokenCache(10)
    cache.put("a", "alice", expires_at=100)
    assert cache.get("a", now=99.9) == "alice"
    assert cache.get("a", now=100) is None
    assert len(cache) == 0


def test_least_recently_used_entry_is_dropped_beyond_the_bound() -> None:
    cache: TokenCache[str] = TokenCache(2)
    cache.put("a", "1", expires_at=100)
    cache.put("b", "2", expires_at=100)
    assert cache.get("a", now=0) == "1"  # a is now the most recently used
    cache.put("c", "3", expires_at=100)
    assert len(cache) == 2
    assert cache.get("b", now=0) is None
    assert cache.get("a", now=0) == "1"
    assert cache.get("c", now=0) == "3"


def test_discard_where_drops_matching_values() -> None:
    cache: TokenCache[str] = TokenCache(10)
    for key in "abc":
        cache.put(key, key.upper(), expires_at=100)
    assert cache.discard_where(lambda value: value in {"A", "C"}) == 2
    assert cache.get("b", now=0) == "B"
    assert cache.get("a", now=0) is None
    cache.clear()
    assert len(cache) == 0


def test_bound_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        TokenCache[str](0)
