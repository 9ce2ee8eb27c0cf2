"""``python -m interlock.iam recover-user``: the local way back in when no admin can log in.

Run where IAM's database settings are (the same ``INTERLOCK_*`` environment as the
service): it unlocks and enables the user and, with ``--password-stdin``, sets a new
password read from standard input (which must be changed at the next login when
``INTERLOCK_BOOTSTRAP_ADMIN_MUST_CHANGE_PASSWORD`` is on). Nothing else is touched;
the service may keep running.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from interlock.common.postgres import PostgresDatabase
from interlock.iam.accounts import Accounts
from interlock.iam.app import MIGRATIONS
from interlock.iam.credentials import Credentials
from interlock.iam.errors import NotFound
from interlock.iam.settings import IamSettings

_MIN_PASSWORD_CHARS = 8


def recover_user_main(argv: list[str]) -> int:
    """Parse ``argv`` (after ``recover-user``), recover the user; the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m interlock.iam recover-user",
        description="Unlock and enable a user, optionally with a new password.",
    )
    parser.add_argument("username")
    parser.add_argument("--tenant", help="default: INTERLOCK_BOOTSTRAP_ADMIN_TENANT")
    parser.add_argument(
        "--password-stdin", action="store_true", help="read a new password from stdin"
    )
    args = parser.parse_args(argv)
    settings = IamSettings()
    password = None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if len(password) < _MIN_PASSWORD_CHARS:
            sys.stderr.write(f"the password needs at least {_MIN_PASSWORD_CHARS} characters\n")
            return 2
    tenant = args.tenant or settings.bootstrap_admin_tenant
    try:
        asyncio.run(_recover(settings, tenant, args.username, password))
    except NotFound as error:
        sys.stderr.write(f"{error}\n")
        return 1
    done = ", password set" if password else ""
    sys.stdout.write(f"{args.username} in {tenant}: unlocked and enabled{done}\n")
    return 0


async def _recover(settings: IamSettings, tenant: str, username: str, password: str | None) -> None:
    database = PostgresDatabase(settings, migrations=[MIGRATIONS])
    await database.start()
    try:
        accounts = Accounts(database, Credentials(database, settings), settings)
        await accounts.recover_user(tenant, username, password)
    finally:
        await database.stop()
