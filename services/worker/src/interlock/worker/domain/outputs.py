"""How a task's return value becomes the output a ``task.completed`` carries."""

from __future__ import annotations

import json
from typing import Any

from interlock.common.strict_json import storable_value
from interlock.worker.errors import TaskFailure

__all__ = ["MAX_OUTPUT_BYTES", "encode_output"]

MAX_OUTPUT_BYTES = 262_144
"""Largest output, as compact UTF-8 JSON. Default: 256 KiB. It travels in
``task.completed``, is stored with the run and may be inlined into downstream params:
an ``http`` task that fetched 1 MiB of binary made a ~6 MiB event the worker retried
forever. A larger output fails the attempt (not retryable): store big results as
artifacts and return a reference."""


def encode_output(output: Any) -> bytes:
    """``output`` as compact UTF-8 JSON, NUL and lone surrogates replaced (U+FFFD).

    Raises:
        TaskFailure: ``InvalidOutput`` when it is not JSON (or holds NaN/Infinity);
            ``OutputTooLarge`` over :data:`MAX_OUTPUT_BYTES`. Neither is retryable.
    """
    try:
        text = json.dumps(
            storable_value(output), separators=(",", ":"), allow_nan=False, ensure_ascii=False
        )
    except (TypeError, ValueError) as error:
        raise TaskFailure(
            f"the task's output is not JSON: {error}", retryable=False, type_="InvalidOutput"
        ) from None
    encoded = text.encode()
    if len(encoded) > MAX_OUTPUT_BYTES:
        raise TaskFailure(
            f"the task's output has {len(encoded)} bytes as JSON; at most {MAX_OUTPUT_BYTES}",
            retryable=False,
            type_="OutputTooLarge",
        )
    return encoded
