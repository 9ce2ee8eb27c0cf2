"""What every command shares: the client for the gateway chosen on the command line."""

from __future__ import annotations

import typer

from interlock.cli._config import open_client
from interlock.client import Client


def client_for(ctx: typer.Context) -> Client:
    """A client for the root command's ``--gateway`` (or the environment's, or the login's)."""
    gateway = ctx.find_root().params.get("gateway")
    return open_client(gateway if isinstance(gateway, str) else None)
