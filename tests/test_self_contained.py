"""The repository stands alone: nothing it tracks points at files outside it."""

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OUTSIDE = ("../shared", "/work/shared", "INFRASTRUCTURE.md", "DESIGN-BRIEF.md")
"""Where the notes the project started from lived; docs/ holds what a reader needs."""


def tracked_files() -> list[Path]:
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / name for name in listed.decode().split("\0") if name]


def test_no_tracked_file_cites_a_file_outside_the_repository() -> None:
    this_file = Path(__file__).resolve()
    citing = [
        f"{path.relative_to(ROOT)} cites {reference}"
        for path in tracked_files()
        if path != this_file and path.is_file()
        for reference in OUTSIDE
        if reference in path.read_bytes().decode("utf-8", errors="replace")
    ]
    assert citing == []
