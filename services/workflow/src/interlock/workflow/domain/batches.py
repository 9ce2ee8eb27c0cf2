"""Batch run starts: what one request may ask for, and the per-run outcome it gets."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from interlock.workflow.domain.definition import canonical_json
from interlock.workflow.domain.documents import parse_json
from interlock.workflow.domain.errors import InvalidDocumentError, PayloadTooLargeError
from interlock.workflow.domain.limits import (
    MAX_BATCH_RUNS,
    MAX_IDEMPOTENCY_KEY_LENGTH,
    MAX_INPUT_BYTES,
)

_SHAPE = '{"runs": [{"input": <JSON value>, "idempotency_key": <string>}, ...]}'


@dataclass(frozen=True, kw_only=True)
class BatchItem:
    """One run a batch asks for."""

    run_input: Any
    input_json: str
    """The input as canonical JSON (what the run stores and its event carries)."""
    idempotency_key: str | None


def parse_batch(body: bytes) -> list[BatchItem]:
    """The runs a batch start request asks for, in order.

    Raises:
        PayloadTooLargeError: One run's input is over :data:`MAX_INPUT_BYTES`.
        InvalidDocumentError: The body is not ``{"runs": [...]}`` with 1 to
            :data:`MAX_BATCH_RUNS` items, each ``{"input"?, "idempotency_key"?}``.
    """
    request = parse_json(body, what="the request body")
    if not isinstance(request, dict) or set(request) != {"runs"}:
        raise InvalidDocumentError(f"the request body is {_SHAPE}")
    runs = request["runs"]
    if not isinstance(runs, list) or not 1 <= len(runs) <= MAX_BATCH_RUNS:
        raise InvalidDocumentError(f"runs is a list of 1 to {MAX_BATCH_RUNS} items: {_SHAPE}")
    return [_item(index, run) for index, run in enumerate(runs)]


def _item(index: int, run: Any) -> BatchItem:
    if not isinstance(run, dict) or set(run) - {"input", "idempotency_key"}:
        raise InvalidDocumentError(f"runs[{index}] is {{input?, idempotency_key?}}")
    key = run.get("idempotency_key")
    if key is not None and (
        not isinstance(key, str) or not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH
    ):
        raise InvalidDocumentError(
            f"runs[{index}].idempotency_key is a string of 1 to "
            f"{MAX_IDEMPOTENCY_KEY_LENGTH} characters"
        )
    run_input = run.get("input", {})
    input_json = canonical_json(run_input)
    if len(input_json.encode()) > MAX_INPUT_BYTES:
        raise PayloadTooLargeError(
            f"runs[{index}].input has more than the {MAX_INPUT_BYTES} bytes one run accepts"
        )
    return BatchItem(run_input=run_input, input_json=input_json, idempotency_key=key)


def request_hash(name: str, run_input: Any) -> str:
    """What an Idempotency-Key is bound to: the workflow and the input (single or batch)."""
    return hashlib.sha256(canonical_json([name, run_input]).encode()).hexdigest()
