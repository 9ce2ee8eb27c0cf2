"""A bounded, expiring cache of validated credentials for the authorizer's hot path."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

V = TypeVar("V")


class TokenCache(Generic[V]):
    """Least-recently-used cache whose entries expire at a time each carries.

    Keys are the credentials themselves (kept only in this process's memory), so a
    hit costs one dictionary lookup instead of a signature check or a query. Safe to
    share between threads (the gRPC server's and the event loop).

    Args:
        max_entries: Entries kept; the least recently used is dropped beyond it.
    """

    def __init__(self, max_entries: int) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str, now: float) -> V | None:
        """The value of ``key`` if present and not expired at ``now`` (Unix time)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires_at, value = entry
            if expires_at <= now:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return value

    def put(self, key: str, value: V, expires_at: float) -> None:
        """Keep ``value`` under ``key`` until ``expires_at`` (Unix time)."""
        with self._lock:
            self._entries[key] = (expires_at, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)

    def discard_where(self, predicate: Callable[[V], bool]) -> int:
        """Drop every entry whose value satisfies ``predicate``; returns how many."""
        with self._lock:
            doomed = [key for key, (_, value) in self._entries.items() if predicate(value)]
            for key in doomed:
                del self._entries[key]
            return len(doomed)

    def clear(self) -> None:
        """Drop everything."""
        with self._lock:
            self._entries.clear()
