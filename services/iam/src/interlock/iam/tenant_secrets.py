"""Tenant secrets: write-only values that only a worker reads, for the task that needs them.

Values are sealed (AES-256-GCM, :mod:`interlock.common.sealing`) with a
key-encryption key from IAM's settings before they reach the database, each bound to
its tenant and name so a sealed value copied to another row does not open. The REST
API writes, lists (names and dates) and deletes them; no route returns a value. A
worker resolving ``{{ secrets.NAME }}`` for a task gets the values over gRPC
(:mod:`interlock.iam.secrets_grpc`), with a service credential; every such read is
logged (tenant, names, run, task; never a value).
"""

from __future__ import annotations

import logging
import re

from interlock.common.paging import Page, PageKey
from interlock.common.postgres import PostgresDatabase
from interlock.iam import secrets_store
from interlock.iam.domain import KeyEncryptionKeys
from interlock.iam.errors import Conflict, IamError, NotFound, TooLarge
from interlock.iam.settings import IamSettings

logger = logging.getLogger(__name__)

SECRET_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
"""What a secret may be called: a name that fits ``{{ secrets.NAME }}`` (and an
environment variable)."""
SECRETS_PAGE = PageKey("secrets", str)
"""Secrets by name."""


class TenantSecrets:
    """The secrets use cases.

    Args:
        database: IAM's database.
        settings: The limits.
        keys: The key-encryption keys that seal the values (IAM's, see
            :attr:`Credentials.key_encryption_keys`).
    """

    def __init__(
        self, database: PostgresDatabase, settings: IamSettings, keys: KeyEncryptionKeys
    ) -> None:
        self._database = database
        self._max_bytes = settings.secret_max_bytes
        self._per_tenant = settings.secrets_per_tenant
        self._keys = keys

    async def put_secret(
        self, tenant: str, name: str, value: str, *, updated_by: str
    ) -> secrets_store.SecretRecord:
        """Create or replace secret ``name`` of ``tenant``.

        Raises:
            IamError: A name that is not ``[A-Za-z_][A-Za-z0-9_]*`` (at most 64).
            TooLarge: A value above ``secret_max_bytes``.
            Conflict: A new secret beyond ``secrets_per_tenant``.
        """
        check_name(name)
        data = value.encode()
        if len(data) > self._max_bytes:
            raise TooLarge(f"A secret's value may hold at most {self._max_bytes} bytes.")
        sealed = self._keys.seal(data, context=_context(tenant, name))
        async with self._database.pool.acquire() as conn, conn.transaction():
            exists = await secrets_store.secret_exists(conn, tenant, name)
            if not exists and await secrets_store.count_secrets(conn, tenant) >= self._per_tenant:
                raise Conflict(f"A tenant may keep at most {self._per_tenant} secrets.")
            record = await secrets_store.put_secret(conn, tenant, name, sealed, updated_by)
        logger.info("secret written", extra={"tenant": tenant, "secret": name, "by": updated_by})
        return record

    async def list_secrets(
        self, tenant: str, *, page_size: int, page_token: str | None
    ) -> Page[secrets_store.SecretRecord]:
        """The secrets of ``tenant`` by name, one page: names and dates, never values.

        Raises:
            InvalidPageTokenError: ``page_token`` was not issued for this list.
        """
        (after,) = SECRETS_PAGE.decode(page_token, {}) if page_token else (None,)
        async with self._database.pool.acquire() as conn:
            rows = await secrets_store.list_secrets(conn, tenant, after=after, limit=page_size + 1)
        return SECRETS_PAGE.page(rows, page_size, lambda secret: (secret.name,), {})

    async def delete_secret(self, tenant: str, name: str, *, deleted_by: str) -> None:
        """Delete secret ``name`` of ``tenant``.

        Raises:
            NotFound: No such secret.
        """
        async with self._database.pool.acquire() as conn:
            if not await secrets_store.delete_secret(conn, tenant, name):
                raise NotFound(f"No secret {name!r}.")
        logger.info("secret deleted", extra={"tenant": tenant, "secret": name, "by": deleted_by})

    async def resolve(
        self, tenant: str, names: list[str], *, run_id: str, task_id: str, attempt: int
    ) -> dict[str, str]:
        """The values of ``names`` for one task attempt (workers only).

        Raises:
            IamError: A malformed name.
            NotFound: A name without a secret (the message names them).
        """
        for name in names:
            check_name(name)
        keys = self._keys
        async with self._database.pool.acquire() as conn:
            sealed = await secrets_store.sealed_secrets(conn, tenant, sorted(set(names)))
        missing = sorted(set(names) - sealed.keys())
        if missing:
            raise NotFound(f"No secret {', '.join(missing)} in the tenant.")
        logger.info(
            "secrets read for a task",
            extra={
                "tenant": tenant,
                "secrets": sorted(sealed),
                "run_id": run_id,
                "task_id": task_id,
                "attempt": attempt,
            },
        )
        return {
            name: keys.unseal(value, context=_context(tenant, name)).decode()
            for name, value in sealed.items()
        }


def check_name(name: str) -> None:
    """Raise unless ``name`` may name a secret.

    Raises:
        IamError: Otherwise.
    """
    if SECRET_NAME.fullmatch(name) is None:
        raise IamError("A secret's name is letters, digits and _ (not first), at most 64.")


def _context(tenant: str, name: str) -> str:
    # Bound into the seal: a value moved to another tenant's or name's row does not open.
    return f"tenant-secret:{tenant}:{name}"
