"""Where the CLI finds its gateway and credentials, and where it keeps a login.

The gateway is ``--gateway``, else ``INTERLOCK_GATEWAY``, else the one of the stored
login, else ``make up``'s. Credentials are ``INTERLOCK_API_KEY``, else the stored
login's session (only for the gateway it was made with). ``interlock login`` stores the
session in the user's config folder (``~/.config/interlock/session.json`` on Linux, as
``XDG_CONFIG_HOME`` says), readable by the user alone (mode 0600).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from interlock.client import DEFAULT_GATEWAY, Client, Session

GATEWAY_ENV = "INTERLOCK_GATEWAY"
API_KEY_ENV = "INTERLOCK_API_KEY"
_FILE_MODE = 0o600
_DIR_MODE = 0o700


def config_dir() -> Path:
    """The user's config folder for the CLI."""
    return Path(platformdirs.user_config_dir("interlock"))


def session_file() -> Path:
    """Where a login's session is kept."""
    return config_dir() / "session.json"


@dataclass(frozen=True)
class StoredLogin:
    """A login kept between commands."""

    gateway: str
    username: str
    tenant: str | None
    session: Session


def load_login() -> StoredLogin | None:
    """The stored login, or ``None`` when there is none (or it is unreadable)."""
    try:
        data = json.loads(session_file().read_text())
        return StoredLogin(
            gateway=data["gateway"],
            username=data["username"],
            tenant=data.get("tenant"),
            session=Session(data["access_token"], data["refresh_token"], data["expires_at"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save_login(login: StoredLogin) -> None:
    """Store ``login`` in a file only its owner may read, replacing the old one whole."""
    folder = config_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=_DIR_MODE)
    data = {
        "gateway": login.gateway,
        "username": login.username,
        "tenant": login.tenant,
        "access_token": login.session.access_token,
        "refresh_token": login.session.refresh_token,
        "expires_at": login.session.expires_at,
    }
    partial = folder / f".session.{os.getpid()}.json"
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _FILE_MODE)
    with os.fdopen(descriptor, "w") as file:
        json.dump(data, file)
    partial.replace(session_file())


def forget_login() -> None:
    """Delete the stored login, if any."""
    session_file().unlink(missing_ok=True)


def resolve_gateway(option: str | None) -> str:
    """The gateway to talk to (see the module's docstring)."""
    if option:
        return option.rstrip("/")
    from_env = os.environ.get(GATEWAY_ENV)
    if from_env:
        return from_env.rstrip("/")
    login = load_login()
    return login.gateway if login else DEFAULT_GATEWAY


def open_client(gateway_option: str | None) -> Client:
    """A client for the gateway, with the API key or the stored login's session.

    A refreshed session is stored again, so the next command uses it.
    """
    gateway = resolve_gateway(gateway_option)
    api_key = os.environ.get(API_KEY_ENV) or None
    login = load_login()
    if api_key or login is None or login.gateway != gateway:
        return Client(gateway, api_key=api_key)

    def keep(session: Session | None) -> None:
        if session is None:
            forget_login()
        else:
            save_login(StoredLogin(gateway, login.username, login.tenant, session))

    return Client(gateway, session=login.session, on_session=keep)
