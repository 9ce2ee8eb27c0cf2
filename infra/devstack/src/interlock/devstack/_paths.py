"""Where the repository's files are (the dev stack runs from a checkout)."""

from __future__ import annotations

import functools
from pathlib import Path


@functools.cache
def repo_root() -> Path:
    """Return the Interlock checkout this package is installed from (editable install).

    Falls back to the current directory when the package does not live in a checkout.
    """
    for parent in Path(__file__).resolve().parents:
        if (parent / "infra" / "devstack" / "pyproject.toml").is_file():
            return parent
    return Path.cwd()


def envoy_dir() -> Path:
    """Folder of the gateway template and its rendered compose version."""
    return repo_root() / "infra" / "envoy"


def console_dir() -> Path:
    """Folder of the web console's static files, which the gateway serves."""
    return repo_root() / "console"
