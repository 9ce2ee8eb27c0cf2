"""Execution documents the projection keeps in memory between batches.

A run's events reach the projection in several batches (a fan-out run's in about four
under load), and each batch used to read the run's document back before folding the
new facts into it: reading and decoding those documents was about a quarter of the
metadata service's CPU under load, and a read for the MongoDB server to serve. The
projection keeps the documents it wrote, as written, and folds the next facts into
them without reading. That holds while this process is the run's only writer, as the
store already assumes (a run's events share its partition, so one consumer owns it):
the kept documents are dropped when the consumer's partitions change hands, and a
run's when the reconciler marks it (a field the kept copy lacks).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from cachetools import LRUCache

from interlock.common.mongo import MongoDocument
from interlock.common.statuses import ENDED_RUN

__all__ = ["DocumentCache"]

_ENDED = frozenset(status.value for status in ENDED_RUN)


class DocumentCache:
    """The documents of the runs most recently written, while their runs are open.

    Args:
        capacity: Most documents kept; the least recently used go first. Default: 2,000.
    """

    def __init__(self, capacity: int = 2_000) -> None:
        self._documents: LRUCache[str, MongoDocument] = LRUCache(maxsize=capacity)

    def __len__(self) -> int:
        return len(self._documents)

    def kept(self, run_ids: Iterable[str]) -> dict[str, MongoDocument]:
        """The kept documents of ``run_ids``, by run id (callers must not change them)."""
        found = {}
        for run_id in run_ids:
            document = self._documents.get(run_id)
            if document is not None:
                found[run_id] = document
        return found

    def put(self, documents: Mapping[str, MongoDocument]) -> None:
        """Keep ``documents`` (by run id) as stored; a finished run's is forgotten instead.

        A finished run rarely gets another event, so it would only take room.
        """
        for run_id, document in documents.items():
            if document.get("status") in _ENDED:
                self._documents.pop(run_id, None)
            else:
                self._documents[run_id] = document

    def forget(self, run_ids: Iterable[str]) -> None:
        """Drop these runs' documents (another writer may have changed them)."""
        for run_id in run_ids:
            self._documents.pop(run_id, None)

    def clear(self) -> None:
        """Drop every document."""
        self._documents.clear()
