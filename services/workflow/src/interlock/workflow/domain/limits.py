"""Size limits on what users send, so one request cannot exhaust the service."""

from __future__ import annotations

MAX_DEFINITION_BYTES = 1_048_576
"""Largest definition document accepted, as sent (YAML or JSON). Default: 1 MiB."""

MAX_PARAMS_BYTES = 65_536
"""Largest ``params`` (or compensation params) of one task, as compact UTF-8 JSON:
they travel in every ``task.scheduled`` event. Default: 64 KiB."""

MAX_COMPILED_BYTES = 700_000
"""Largest normalized definition (protobuf): every ``workflow.started`` carries it with
the run's input (at most :data:`MAX_INPUT_BYTES`), and an event must stay under the
outbox relay's 1,000,000-byte record limit or it is parked and the run never starts."""

MAX_TASKS = 1_000
"""Most tasks one definition may hold."""

MAX_INPUT_BYTES = 262_144
"""Largest run start request body (the run's input inside it). Default: 256 KiB."""

MAX_ISSUES = 100
"""Most problems one validation reports; the rest are summarized."""

MAX_NESTING = 64
"""Deepest nesting of objects and arrays accepted in a definition or a run input."""

MAX_BATCH_RUNS = 1_000
"""Most runs one batch start request may hold (its body, like every JSON body, at most
1 MiB: the gateway and the service refuse more with 413)."""

MAX_IDEMPOTENCY_KEY_LENGTH = 255
"""Longest Idempotency-Key, in a header or a batch item."""
