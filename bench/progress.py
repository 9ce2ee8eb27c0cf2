"""The progress bar shown while the benchmark runs (rich)."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)


class ProgressBoard:
    """One bar per workload, plus log lines above the bars."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            TextColumn("{task.description:<34}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        )

    def __enter__(self) -> ProgressBoard:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def note(self, text: str) -> None:
        """Print a line above the bars."""
        self._progress.console.log(text)

    def bar(self, label: str, total: int | None) -> Bar:
        """Add a bar counting to ``total`` (``None``: unknown)."""
        return Bar(self._progress, self._progress.add_task(label, total=total))


class Bar:
    """One workload's bar."""

    def __init__(self, progress: Progress, task: TaskID) -> None:
        self._progress = progress
        self._task = task

    def advance(self, count: int = 1) -> None:
        """Count ``count`` more done."""
        self._progress.advance(self._task, count)

    def done(self) -> None:
        """Show the bar complete at what it counted (a time-bound workload ends early)."""
        completed = self._progress.tasks[self._task].completed
        self._progress.update(self._task, total=max(completed, 1), completed=max(completed, 1))
