"""The JSON Schema of a workflow definition (served at ``GET /api/v1/workflows/schema``).

The schema checks the shape; :mod:`interlock.workflow.domain.definition` checks what a
schema cannot say well (the graph, timezones, calendar dates, delay parameters, template
references) and normalizes the result.
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator

from interlock.common.conditions import MAX_CONDITION_CHARS
from interlock.common.durations import DURATION_PATTERN
from interlock.workflow.domain.limits import MAX_TASKS
from interlock.workflow.domain.task_types import EXECUTOR_TYPES, TASK_TYPES

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
"""A workflow name: letters, digits, ``.``, ``_``, ``-``; up to 128 characters."""
TASK_ID_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,127}$"
"""A task id: letters, digits, ``_``, ``-`` (what template paths can name)."""
QUEUE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
"""A worker queue name."""
LABEL_KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$"
"""A label key."""
MAX_ATTEMPTS = 100
"""Most attempts a retry policy may allow."""
MIN_PRIORITY, MAX_PRIORITY = -1000, 1000
"""Range of task priorities (higher runs first); default 0."""
MAX_CONCURRENT_RUNS = 100_000
"""Largest ``max_concurrent_runs`` a definition may set."""
TRIGGER_RULES = ("all_success", "all_done", "one_success", "one_failed", "none_failed")
"""A task's ``trigger_rule`` values, as in Airflow; ``all_success`` by default."""

_DURATION = {
    "type": "string",
    "pattern": DURATION_PATTERN,
    "description": "A duration such as 500ms, 1s, 5m, 2h, 2d or 1h30m.",
}

DEFINITION_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "urn:interlock:schema:workflow-definition:v1",
    "title": "Interlock workflow definition",
    "type": "object",
    "required": ["name", "tasks"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": NAME_PATTERN},
        "description": {"type": "string", "maxLength": 4096},
        "labels": {
            "type": "object",
            "maxProperties": 64,
            "propertyNames": {"pattern": LABEL_KEY_PATTERN},
            "additionalProperties": {"type": "string", "maxLength": 256},
        },
        "input_schema": {
            "type": "object",
            "description": "JSON Schema (2020-12) every run's input must satisfy.",
        },
        "timeout": {
            "$ref": "#/$defs/duration",
            "description": "Longest a run may take from its start: past it the run fails "
            "and its running tasks are cancelled. Default: none.",
        },
        "max_concurrent_runs": {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_CONCURRENT_RUNS,
            "description": "Most runs of this workflow running at once in the tenant; "
            "runs over it wait, pending, and start in order. Default: no limit.",
        },
        "output": {
            "type": "object",
            "description": "The run's output: strings may hold {{ input.<path> }} and "
            "{{ tasks.<id>.output[.<path>] }}, rendered when the run succeeds. "
            "Default: the outputs of the tasks nothing depends on.",
        },
        "defaults": {
            "type": "object",
            "additionalProperties": False,
            "description": "Task settings applied where a task does not set its own.",
            "properties": {
                "retry": {"$ref": "#/$defs/retry"},
                "timeout": {"$ref": "#/$defs/duration"},
                "heartbeat_timeout": {"$ref": "#/$defs/duration"},
                "schedule_to_start_timeout": {"$ref": "#/$defs/duration"},
                "queue": {"$ref": "#/$defs/queue"},
                "priority": {"$ref": "#/$defs/priority"},
            },
        },
        "tasks": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_TASKS,
            "items": {"$ref": "#/$defs/task"},
        },
    },
    "$defs": {
        "duration": _DURATION,
        "queue": {"type": "string", "pattern": QUEUE_PATTERN},
        "priority": {"type": "integer", "minimum": MIN_PRIORITY, "maximum": MAX_PRIORITY},
        "retry": {
            "type": "object",
            "additionalProperties": False,
            "description": (
                "Defaults: max_attempts 1 (no retry), initial_interval 1s, backoff 2.0, "
                "max_interval 60s, jitter full."
            ),
            "properties": {
                "max_attempts": {"type": "integer", "minimum": 1, "maximum": MAX_ATTEMPTS},
                "initial_interval": {"$ref": "#/$defs/duration"},
                "backoff": {"type": "number", "minimum": 1, "maximum": 100},
                "max_interval": {"$ref": "#/$defs/duration"},
                "jitter": {"enum": ["none", "full"]},
            },
        },
        "task": {
            "type": "object",
            "required": ["id", "type"],
            "additionalProperties": False,
            "properties": {
                "id": {"type": "string", "pattern": TASK_ID_PATTERN},
                "type": {"enum": list(TASK_TYPES)},
                "params": {
                    "type": "object",
                    "description": (
                        "Executor parameters; strings may hold {{ input.<path> }} and "
                        "{{ tasks.<upstream id>.output[.<path>] }}. A delay task takes "
                        "exactly one of {duration}, {weekdays: [mon..sun], at: HH:MM, "
                        "timezone} or {date: YYYY-MM-DD, at: HH:MM, timezone} "
                        "(at defaults to 00:00 for a date, timezone to UTC)."
                    ),
                },
                "depends_on": {
                    "type": "array",
                    "maxItems": MAX_TASKS,
                    "items": {"type": "string"},
                },
                "retry": {"$ref": "#/$defs/retry"},
                "timeout": {"$ref": "#/$defs/duration"},
                "heartbeat_timeout": {"$ref": "#/$defs/duration"},
                "compensate": {
                    "type": "object",
                    "required": ["type"],
                    "additionalProperties": False,
                    "properties": {
                        "type": {"enum": list(EXECUTOR_TYPES)},
                        "params": {"type": "object"},
                    },
                },
                "queue": {"$ref": "#/$defs/queue"},
                "priority": {"$ref": "#/$defs/priority"},
                "schedule_to_start_timeout": {
                    "$ref": "#/$defs/duration",
                    "description": "Longest an attempt may wait for a worker to start "
                    "it: past it the attempt fails (retryable: the retry policy decides).",
                },
                "when": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": MAX_CONDITION_CHARS,
                    "description": "A condition; false skips the task. Comparisons "
                    "(== != < <= > >= in, not in), and/or/not, parentheses, literals "
                    "(numbers, 'strings', true, false, null) and paths input.<field>..., "
                    "tasks.<upstream id>.output..., tasks.<upstream id>.status.",
                },
                "trigger_rule": {
                    "enum": list(TRIGGER_RULES),
                    "description": "When the task may run given its upstream tasks: "
                    "all_success (default), all_done, one_success, one_failed, "
                    "none_failed. Tasks it cannot run for are skipped.",
                },
            },
        },
    },
}
"""The definition schema, JSON Schema 2020-12."""

Draft202012Validator.check_schema(DEFINITION_SCHEMA)
DEFINITION_VALIDATOR = Draft202012Validator(DEFINITION_SCHEMA)
"""A validator for :data:`DEFINITION_SCHEMA`, built once."""
