"""Dependency graphs: which tasks are ready, and the order compensations run in."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from interlock.scheduler.domain.states import TaskStatus

DONE = frozenset({TaskStatus.SUCCEEDED, TaskStatus.SKIPPED})
"""Statuses that satisfy a downstream task's dependency."""


def ready_tasks(
    depends_on: Mapping[str, Sequence[str]],
    statuses: Mapping[str, TaskStatus],
    satisfied: frozenset[TaskStatus] = DONE,
) -> list[str]:
    """The pending tasks whose every upstream task succeeded (or was skipped).

    Tasks without dependencies are ready at once, so parallel branches start together;
    a join waits for all of its upstream tasks.

    Args:
        depends_on: Each task's upstream task ids, in definition order.
        statuses: Each task's current status.
        satisfied: Upstream statuses that count as done. Default: :data:`DONE`.

    Returns:
        Ready task ids, in definition order.
    """
    return [
        task_id
        for task_id, upstream in depends_on.items()
        if statuses[task_id] is TaskStatus.PENDING
        and all(statuses[dep] in satisfied for dep in upstream)
    ]


def compensation_order(
    depends_on: Mapping[str, Sequence[str]], succeeded: Iterable[str]
) -> dict[str, list[str]]:
    """The dependencies between the compensations of ``succeeded`` tasks.

    A compensation runs after the compensations of every succeeded task that depended
    (directly or through tasks that did not succeed) on its task: reverse dependency
    order, independent branches in parallel.

    Args:
        depends_on: Each task's upstream task ids.
        succeeded: Tasks whose compensation must run.

    Returns:
        For each succeeded task, the succeeded tasks whose compensations must finish first.
    """
    done = set(succeeded)
    downstream: dict[str, set[str]] = {task_id: set() for task_id in depends_on}
    for task_id, upstream in depends_on.items():
        for dep in upstream:
            downstream[dep].add(task_id)

    def nearest_succeeded_downstream(task_id: str) -> set[str]:
        found: set[str] = set()
        stack = list(downstream[task_id])
        seen: set[str] = set()
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            if current in done:
                found.add(current)
            else:
                stack.extend(downstream[current])
        return found

    return {
        task_id: sorted(nearest_succeeded_downstream(task_id))
        for task_id in depends_on
        if task_id in done
    }
