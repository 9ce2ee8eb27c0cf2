"""The port offsets the tests and benchmarks give their stacks: each module's own
(``OFFSETS``, ``PORT_OFFSETS``, ``PLATFORM_PORT_OFFSETS``), read from the source.

Two stacks of one session, or of two sessions on one machine, run side by side, so
no offset may give a port another one gives. And a port in the kernel's ephemeral
range (32768 and up) may be held at random by any outgoing connection when the
stack starts: a CI run failed that way once (a bench stack's S3 gRPC port on 39988).
"""

from __future__ import annotations

import ast
import functools
import itertools
import os
from collections.abc import Iterator
from pathlib import Path

from interlock.devstack import Stack

ROOT = Path(__file__).resolve().parents[3]
EPHEMERAL_PORTS_START = 32768
"""Linux's default ``net.ipv4.ip_local_port_range`` begins here."""


def _python_files() -> Iterator[Path]:
    for folder, subfolders, files in os.walk(ROOT):
        subfolders[:] = [s for s in subfolders if not s.startswith(".") and s != "node_modules"]
        yield from (Path(folder) / name for name in files if name.endswith(".py"))


def _offsets_in(path: Path) -> Iterator[tuple[str, int]]:
    for statement in ast.parse(path.read_text(), filename=str(path)).body:
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target, value = statement.targets[0], statement.value
        elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
            target, value = statement.target, statement.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id.endswith("OFFSETS"):
            for offset in ast.literal_eval(value):
                yield f"{path.relative_to(ROOT)}:{target.id}", offset


@functools.cache
def _declared_offsets() -> dict[int, str]:
    """Each declared offset and where (the tree is read once per session)."""
    found: dict[int, str] = {}
    for path in _python_files():
        for where, offset in _offsets_in(path):
            assert offset not in found, f"offset {offset} is in {found[offset]} and {where}"
            found[offset] = where
    return found


def _ports(offset: int) -> set[int]:
    stack = Stack(data_dir=Path("/unused"), port_offset=offset)
    return {port for ports in stack.ports_by_program().values() for port in ports.values()}


def test_the_modules_offsets_are_found() -> None:
    declared = _declared_offsets()
    assert {100, 600, 1150, 1425, 2600, 3350} <= declared.keys()


def test_every_port_of_every_declared_offset_lies_below_the_ephemeral_range() -> None:
    high = {offset: max(_ports(offset)) for offset in _declared_offsets()}
    assert {o: port for o, port in high.items() if port >= EPHEMERAL_PORTS_START} == {}


def test_no_two_declared_offsets_share_a_port() -> None:
    declared = _declared_offsets()
    ports = {offset: _ports(offset) for offset in declared}
    shared = {
        (declared[a], a, declared[b], b): sorted(ports[a] & ports[b])
        for a, b in itertools.combinations(sorted(declared), 2)
    }
    assert {pair: common for pair, common in shared.items() if common} == {}
