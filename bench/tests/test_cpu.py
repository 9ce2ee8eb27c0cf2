"""CPU figures name each process by the program it runs."""

from __future__ import annotations

import psutil

from bench.cpu import program_name


def test_a_python_program_is_named_by_its_module_or_script() -> None:
    # This test runs as ``python -m pytest`` or as the ``pytest`` script.
    assert program_name(psutil.Process()) == "pytest"
