"""``interlock users …``, ``keys …`` and ``secrets set|list|delete`` (IAM)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from interlock.cli._context import client_for
from interlock.cli._output import CliError, Column, Format, OutputOption, chosen, emit, say

users = typer.Typer(help="Users of your tenant (admin).", no_args_is_help=True)
keys = typer.Typer(help="API keys for scripts and CI (admin).", no_args_is_help=True)
secrets = typer.Typer(
    help="Tenant secrets, write-only; tasks read them as {{ secrets.NAME }}.", no_args_is_help=True
)

UserArgument = Annotated[str, typer.Argument(help="The user's id.")]
RolesOption = Annotated[
    list[str],
    typer.Option("--role", "-r", help="viewer, developer, operator or admin. Repeatable."),
]
USER_COLUMNS = [
    Column("id", lambda u: u.id, whole=True),
    Column("username", lambda u: u.username),
    Column("roles", lambda u: u.roles),
    Column("created", lambda u: u.created_at),
    Column("disabled", lambda u: u.disabled_at),
    Column("locked until", lambda u: u.locked_until),
]


def _secret_input(prompt: str, from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    value: str = typer.prompt(prompt, hide_input=True, confirmation_prompt=True)
    return value


@users.command("list")
def list_users(ctx: typer.Context, output: OutputOption = None) -> None:
    """Every user of your tenant.

    Example: interlock users list
    """
    with client_for(ctx) as client:
        emit(list(client.users.list()), output, USER_COLUMNS)


@users.command("get")
def get_user(ctx: typer.Context, user_id: UserArgument, output: OutputOption = None) -> None:
    """One user.

    Example: interlock users get 3f9a... -o yaml
    """
    with client_for(ctx) as client:
        emit(client.users.get(user_id), output, USER_COLUMNS)


@users.command("create")
def create_user(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="Letters, digits, '.', '_' and '-'.")],
    role: RolesOption,
    password_stdin: Annotated[
        bool, typer.Option(help="Read the password from stdin. Default: asked for.")
    ] = False,
    must_change_password: Annotated[
        bool, typer.Option(help="The user must change it at first login.")
    ] = False,
    output: OutputOption = None,
) -> None:
    """Create a user of your tenant.

    Example: interlock users create dana --role developer
    """
    password = _secret_input("Password", password_stdin)
    with client_for(ctx) as client:
        user = client.users.create(
            username, password, role, must_change_password=must_change_password
        )
    emit(user, output, USER_COLUMNS)


@users.command("set-roles")
def set_roles(ctx: typer.Context, user_id: UserArgument, role: RolesOption) -> None:
    """Replace a user's roles; their sessions end (the roles apply from the next login).

    Example: interlock users set-roles 3f9a... --role operator
    """
    with client_for(ctx) as client:
        user = client.users.update(user_id, roles=role)
    say(f"user {user.username}: roles {', '.join(user.roles)}")


@users.command("disable")
def disable(ctx: typer.Context, user_id: UserArgument) -> None:
    """Disable a user: no logins; their sessions and API keys stop at once.

    Example: interlock users disable 3f9a...
    """
    with client_for(ctx) as client:
        user = client.users.update(user_id, disabled=True)
    say(f"user {user.username} disabled")


@users.command("enable")
def enable(ctx: typer.Context, user_id: UserArgument) -> None:
    """Enable a disabled user again (their API keys work again).

    Example: interlock users enable 3f9a...
    """
    with client_for(ctx) as client:
        user = client.users.update(user_id, disabled=False)
    say(f"user {user.username} enabled")


@users.command("reset-password")
def reset_password(
    ctx: typer.Context,
    user_id: UserArgument,
    password_stdin: Annotated[
        bool, typer.Option(help="Read the password from stdin. Default: asked for.")
    ] = False,
) -> None:
    """Set a new password, which the user must change at the next login.

    Example: interlock users reset-password 3f9a...
    """
    password = _secret_input("New password", password_stdin)
    with client_for(ctx) as client:
        user = client.users.update(user_id, password=password)
    say(f"user {user.username}: password reset")


@users.command("unlock")
def unlock(ctx: typer.Context, user_id: UserArgument) -> None:
    """End a user's login lockout.

    Example: interlock users unlock 3f9a...
    """
    with client_for(ctx) as client:
        client.users.unlock(user_id)
    say(f"user {user_id} unlocked")


@users.command("delete")
def delete_user(ctx: typer.Context, user_id: UserArgument) -> None:
    """Delete a user: their sessions and API keys stop at once.

    Example: interlock users delete 3f9a...
    """
    with client_for(ctx) as client:
        client.users.delete(user_id)
    say(f"user {user_id} deleted")


@keys.command("list")
def list_keys(ctx: typer.Context, output: OutputOption = None) -> None:
    """Every API key of your tenant (never their values).

    Example: interlock keys list
    """
    with client_for(ctx) as client:
        found = list(client.api_keys.list())
    emit(
        found,
        output,
        [
            Column("id", lambda k: k.id, whole=True),
            Column("name", lambda k: k.name),
            Column("prefix", lambda k: k.prefix),
            Column("roles", lambda k: k.roles),
            Column("expires", lambda k: k.expires_at),
            Column("last used", lambda k: k.last_used_at),
            Column("revoked", lambda k: k.revoked_at),
        ],
    )


@keys.command("create")
def create_key(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="What the key is for.")],
    role: RolesOption,
    expires_in_days: Annotated[
        int | None, typer.Option(help="Lifetime in days. Default: until revoked.", min=1)
    ] = None,
    output: OutputOption = None,
) -> None:
    """Create an API key; its value is shown once, here.

    Example: interlock keys create ci --role developer -o json | jq -r .key
    """
    expires_in_s = None if expires_in_days is None else expires_in_days * 86_400
    with client_for(ctx) as client:
        created = client.api_keys.create(name, role, expires_in_s=expires_in_s)
    if chosen(output) is Format.TABLE:
        say(f"API key [bold]{created.name}[/] ({created.id}), shown once:")
        typer.echo(created.key)
    else:
        emit(created, output, [])


@keys.command("revoke")
def revoke_key(
    ctx: typer.Context, key_id: Annotated[str, typer.Argument(help="The key's id.")]
) -> None:
    """Revoke an API key: it stops working at once.

    Example: interlock keys revoke 8c1d...
    """
    with client_for(ctx) as client:
        client.api_keys.revoke(key_id)
    say(f"API key {key_id} revoked")


@secrets.command("set")
def set_secret(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The secret's name.")],
    from_file: Annotated[
        Path | None, typer.Option(help="Read the value from this file.", dir_okay=False)
    ] = None,
    value_stdin: Annotated[
        bool, typer.Option(help="Read the value from stdin. Default: asked for, no echo.")
    ] = False,
) -> None:
    """Store or replace a tenant secret (operator); the value is never shown again.

    Example: interlock secrets set API_TOKEN --value-stdin < token.txt
    """
    if from_file is not None:
        try:
            value = from_file.read_text().rstrip("\r\n")
        except OSError as error:
            raise CliError(f"cannot read {from_file}: {error.strerror}") from error
    else:
        value = _secret_input("Value", value_stdin)
    with client_for(ctx) as client:
        client.secrets.set(name, value)
    say(f"secret [bold]{name}[/] stored")


@secrets.command("list")
def list_secrets(ctx: typer.Context, output: OutputOption = None) -> None:
    """Names and dates of your tenant's secrets (never values).

    Example: interlock secrets list
    """
    with client_for(ctx) as client:
        found = list(client.secrets.list())
    emit(
        found,
        output,
        [
            Column("name", lambda s: s.name),
            Column("updated", lambda s: s.updated_at),
            Column("by", lambda s: s.updated_by),
        ],
    )


@secrets.command("delete")
def delete_secret(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="The secret's name.")]
) -> None:
    """Delete a tenant secret (operator).

    Example: interlock secrets delete API_TOKEN
    """
    with client_for(ctx) as client:
        client.secrets.delete(name)
    say(f"secret {name} deleted")


def register(app: typer.Typer) -> None:
    """Add these commands to ``app``."""
    app.add_typer(users, name="users")
    app.add_typer(keys, name="keys")
    app.add_typer(secrets, name="secrets")
