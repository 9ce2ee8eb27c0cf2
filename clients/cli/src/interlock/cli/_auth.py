"""``interlock login``, ``logout`` and ``whoami``."""

from __future__ import annotations

import contextlib
import sys
from typing import Annotated

import typer

from interlock.cli._config import (
    StoredLogin,
    forget_login,
    load_login,
    resolve_gateway,
    save_login,
)
from interlock.cli._context import client_for
from interlock.cli._output import Column, OutputOption, emit, say
from interlock.client import Client, InterlockClientError


def login(
    ctx: typer.Context,
    username: Annotated[
        str | None, typer.Option("--username", "-u", help="Default: asked for.")
    ] = None,
    tenant: Annotated[
        str | None, typer.Option(help="Default: the system tenant (default locally).")
    ] = None,
    gateway: Annotated[
        str | None, typer.Option(help="The gateway's URL. Default: as the root option.")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option(help="Read the password from standard input, for scripts.")
    ] = False,
) -> None:
    """Log in; the session is stored for the next commands and refreshed as it expires.

    The password is asked for without echo. The session is kept in the user's config
    folder, readable by the user alone.

    Example: interlock login --username admin --tenant default
    """
    root_gateway = ctx.find_root().params.get("gateway")
    url = resolve_gateway(gateway or (root_gateway if isinstance(root_gateway, str) else None))
    name = username or typer.prompt("Username")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True)
    with Client(url) as client:
        session = client.login(name, password, tenant)
    save_login(StoredLogin(url, name, tenant, session))
    say(f"Logged in to {url} as {name}" + (f" (tenant {tenant})" if tenant else ""))


def logout(ctx: typer.Context) -> None:
    """End the stored session on the server and forget it.

    Example: interlock logout
    """
    stored = load_login()
    if stored is None:
        say("Not logged in.")
        return
    # Ended already, or unreachable: forgetting it is what matters here.
    with (
        Client(stored.gateway, session=stored.session) as client,
        contextlib.suppress(InterlockClientError),
    ):
        client.logout()
    forget_login()
    say(f"Logged out of {stored.gateway}.")


def whoami(ctx: typer.Context, output: OutputOption = None) -> None:
    """Who the credentials belong to: id, tenant and roles.

    Example: interlock whoami -o json
    """
    with client_for(ctx) as client:
        principal = client.auth.whoami()
    emit(
        principal,
        output,
        [
            Column("id", lambda p: p.id, whole=True),
            Column("tenant", lambda p: p.tenant),
            Column("roles", lambda p: p.roles),
        ],
    )


def register(app: typer.Typer) -> None:
    """Add these commands to ``app``."""
    app.command()(login)
    app.command()(logout)
    app.command()(whoami)
