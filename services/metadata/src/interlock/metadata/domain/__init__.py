"""The metadata service's pure logic: execution documents and search requests (no I/O)."""

from interlock.metadata.domain.executions import (
    AttemptFinished,
    AttemptHeartbeat,
    AttemptScheduled,
    AttemptStarted,
    Fact,
    RunControlled,
    RunEnded,
    RunStarted,
    SearchKey,
    TaskDeadLettered,
    apply,
    keywords_of,
    millis,
)
from interlock.metadata.domain.search import (
    CreationWindows,
    OrderBy,
    Search,
    Summary,
    Window,
    summarize,
)

__all__ = [
    "AttemptFinished",
    "AttemptHeartbeat",
    "AttemptScheduled",
    "AttemptStarted",
    "CreationWindows",
    "Fact",
    "OrderBy",
    "RunControlled",
    "RunEnded",
    "RunStarted",
    "Search",
    "SearchKey",
    "Summary",
    "TaskDeadLettered",
    "Window",
    "apply",
    "keywords_of",
    "millis",
    "summarize",
]
