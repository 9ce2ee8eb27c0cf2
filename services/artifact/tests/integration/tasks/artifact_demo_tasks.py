"""A python task that stores artifacts, imported by the worker of the platform test.

The worker imports it by name (``INTERLOCK_PYTHON_TASK_MODULES``) from this folder,
which the test puts on the stack's ``PYTHONPATH``.
"""

from __future__ import annotations

from typing import Any

from interlock.worker.artifacts import write_text_artifact
from interlock.worker.sdk import current_context, task


@task("artifact_demo.report")
async def report(text: str) -> dict[str, Any]:
    """Store ``text`` twice (bytes, then through the helper), read it back, return both."""
    ctx = current_context()
    ref = await ctx.artifacts.upload("report.txt", text.encode(), content_type="text/plain")
    note = await write_text_artifact(ctx, "note.txt", text.upper())
    back = await ctx.artifacts.download("report.txt")
    return {"report": ref.reference(), "note": note, "read_back": back.decode()}
