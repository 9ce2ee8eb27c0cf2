"""Artifact names, object keys and download file names: what is safe, decided once."""

from __future__ import annotations

import base64
import re
import unicodedata
import uuid
from urllib.parse import quote

from interlock.artifact.domain.errors import InvalidArtifactError

__all__ = [
    "MAX_NAME_BYTES",
    "RUN_LEVEL_TASK",
    "check_name",
    "check_run_id",
    "check_task_id",
    "content_disposition",
    "object_key",
    "run_prefix",
]

MAX_NAME_BYTES = 255
"""Longest name, in UTF-8 bytes (what most file systems accept as one file name)."""
RUN_LEVEL_TASK = "-"
"""The task segment of an artifact that belongs to the run, not to one task (no task id
can be ``-``: they start with a letter, a digit or ``_``)."""

_TASK_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,127}")
_PLAIN_TENANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")


def check_name(name: str) -> str:
    r"""``name`` when it is a safe file name, else :class:`InvalidArtifactError`.

    Refused: empty, longer than :data:`MAX_NAME_BYTES` UTF-8 bytes, ``.`` and ``..``,
    a ``/`` or ``\\`` (no paths), and control or format characters (C0, C1, DEL,
    bidirectional overrides...), which hide what a name says.
    """
    if not name:
        raise InvalidArtifactError("the name is empty")
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise InvalidArtifactError(f"the name is longer than {MAX_NAME_BYTES} bytes")
    if name in {".", ".."}:
        raise InvalidArtifactError("the name may not be . or ..")
    if "/" in name or "\\" in name:
        raise InvalidArtifactError("the name may not hold / or \\ (no paths)")
    if any(unicodedata.category(char) in {"Cc", "Cf", "Cs", "Zl", "Zp"} for char in name):
        raise InvalidArtifactError("the name may not hold control or format characters")
    return name


def check_run_id(run_id: str) -> uuid.UUID:
    """``run_id`` as a UUID (run ids are), else :class:`InvalidArtifactError`."""
    try:
        return uuid.UUID(run_id)
    except (ValueError, AttributeError, TypeError):
        raise InvalidArtifactError("run_id is not a run id (a UUID)") from None


def check_task_id(task_id: str | None) -> str | None:
    """``task_id`` when absent or shaped like a workflow task id, else 422."""
    if task_id is None or task_id == "":
        return None
    if _TASK_ID.fullmatch(task_id) is None:
        raise InvalidArtifactError("task_id is not a task id ([A-Za-z0-9_][A-Za-z0-9_-]*)")
    return task_id


def _tenant_segment(tenant: str) -> str:
    if _PLAIN_TENANT.fullmatch(tenant):
        return tenant
    return "~" + base64.urlsafe_b64encode(tenant.encode()).decode().rstrip("=")


def run_prefix(tenant: str, run_id: uuid.UUID) -> str:
    """The key prefix of every object of one run: ``<tenant>/<run_id>/``."""
    return f"{_tenant_segment(tenant)}/{run_id}/"


def object_key(tenant: str, run_id: uuid.UUID, task_id: str | None, artifact_id: uuid.UUID) -> str:
    """Where an artifact's bytes live in the bucket: ``<tenant>/<run>/<task>/<artifact_id>``.

    The tenant as it is when it is plain (letters, digits, ``_``, ``-``), else ``~`` and
    its base64url; the task is :data:`RUN_LEVEL_TASK` for a run's own artifact. The name
    stays out of the key: it is in the row, and a key of safe characters only is signed
    and routed the same by every S3 client, proxy and server.
    """
    return f"{run_prefix(tenant, run_id)}{task_id or RUN_LEVEL_TASK}/{artifact_id}"


def content_disposition(name: str) -> str:
    """An ``attachment`` header value that names the file safely (RFC 6266).

    ``filename`` is an ASCII fallback (anything else, quotes and backslashes become
    ``_``); ``filename*`` carries the exact name, percent-encoded UTF-8.
    """
    fallback = "".join(
        char if " " <= char <= "~" and char not in {'"', "\\"} else "_" for char in name
    )
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
