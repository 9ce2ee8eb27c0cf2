"""The task graph: cycles and upstream sets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from graphlib import CycleError, TopologicalSorter


def find_cycles(edges: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Every independent cycle of a dependency graph, each as a closed path.

    Args:
        edges: Task id → ids it depends on (only known ids).

    Returns:
        Cycles such as ``["a", "b", "a"]`` (a depends on b, b on a); empty for a DAG.
        After a cycle is found one of its edges is set aside and the search goes on,
        so each reported cycle is a separate problem to fix.
    """
    remaining = {node: list(dict.fromkeys(deps)) for node, deps in edges.items()}
    cycles: list[list[str]] = []
    while True:
        try:
            TopologicalSorter(remaining).prepare()
        except CycleError as error:
            # graphlib gives the cycle in dependency order, first node repeated last.
            cycle: list[str] = list(error.args[1])
            cycles.append(list(reversed(cycle)))
            dependent, dependency = cycle[1], cycle[0]
            remaining[dependent] = [d for d in remaining[dependent] if d != dependency]
            continue
        return cycles


def upstream(edges: Mapping[str, Sequence[str]], node: str) -> set[str]:
    """Every task ``node`` depends on, directly or transitively (cycles tolerated)."""
    seen: set[str] = set()
    stack = list(edges.get(node, ()))
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        stack.extend(edges.get(current, ()))
    return seen
