"""A definition document → the normalized :class:`WorkflowDefinition` the scheduler runs.

:func:`compile_definition` validates a parsed document against the JSON Schema, then
checks what the schema cannot (duplicate and unknown ids, cycles, template references
to tasks that are not upstream, timezones, dates, delay parameters, the input schema
itself), and reports every problem at once with a JSON Pointer. A valid document
becomes a :class:`CompiledDefinition`: defaults applied, durations in milliseconds,
weekdays as ISO numbers, delays, retries and compensations typed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from interlock.common import templates
from interlock.common.durations import is_duration, parse_duration_ms
from interlock.events.v1 import definition_pb2
from interlock.workflow.domain.delays import parse_delay
from interlock.workflow.domain.errors import InvalidDefinitionError
from interlock.workflow.domain.graph import find_cycles, upstream
from interlock.workflow.domain.inputs import schema_issues
from interlock.workflow.domain.issues import Issue, pointer, sorted_issues
from interlock.workflow.domain.limits import MAX_COMPILED_BYTES, MAX_ISSUES, MAX_PARAMS_BYTES
from interlock.workflow.domain.schema import DEFINITION_VALIDATOR
from interlock.workflow.domain.shell_commands import SHELL, split_command_params
from interlock.workflow.domain.task_types import DELAY

RESERVED_NAMES = frozenset({"schema"})
"""Workflow names taken by routes (``GET /api/v1/workflows/schema``)."""
DEFAULT_MAX_ATTEMPTS = 1
"""Attempts when neither the task nor the defaults say: 1, no retry."""
DEFAULT_INITIAL_INTERVAL_MS = 1_000
DEFAULT_BACKOFF = 2.0
DEFAULT_MAX_INTERVAL_MS = 60_000
DEFAULT_JITTER = "full"

_JITTER = {
    "none": definition_pb2.RetryPolicy.JITTER_NONE,
    "full": definition_pb2.RetryPolicy.JITTER_FULL,
}


@dataclass(frozen=True, kw_only=True)
class CompiledDefinition:
    """A valid definition, ready to store and to run.

    Attributes:
        name: The workflow name.
        description: Free text; ``""`` when absent.
        labels: Label keys and values; empty when absent.
        input_schema: JSON Schema every run's input must satisfy, or ``None``.
        document: The document as the user wrote it (parsed).
        content_hash: SHA-256 of the document's canonical JSON: equal hashes mean an
            unchanged definition.
        definition: The normalized definition, ``version`` left 0 (the store assigns it).
    """

    name: str
    description: str
    labels: dict[str, str]
    input_schema: dict[str, Any] | None
    document: dict[str, Any]
    content_hash: str
    definition: definition_pb2.WorkflowDefinition

    @property
    def task_ids(self) -> list[str]:
        """Task ids in document order."""
        return [task.id for task in self.definition.tasks]


def canonical_json(value: Any) -> str:
    """``value`` as JSON with sorted keys and no spaces: equal values, equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def compile_definition(document: Any) -> CompiledDefinition:
    """Validate and normalize a parsed definition document.

    Args:
        document: The document (JSON values), e.g. from ``parse_document``.

    Returns:
        The compiled definition.

    Raises:
        InvalidDefinitionError: With one issue per problem, sorted by pointer (at most
            ``MAX_ISSUES``; a final issue at ``""`` says how many more there were).
    """
    issues = [
        Issue(pointer(*error.absolute_path), error.message)
        for error in DEFINITION_VALIDATOR.iter_errors(document)
    ]
    if not isinstance(document, dict):
        raise InvalidDefinitionError(_bounded(issues))
    defaults_value = document.get("defaults")
    defaults: dict[str, Any] = defaults_value if isinstance(defaults_value, dict) else {}
    tasks_value = document.get("tasks")
    raw_tasks: list[Any] = tasks_value if isinstance(tasks_value, list) else []
    tasks = [t for t in raw_tasks if isinstance(t, dict) and isinstance(t.get("id"), str)]
    name = document.get("name")
    if isinstance(name, str) and name in RESERVED_NAMES:
        issues.append(Issue("/name", f"{document['name']!r} is reserved: it names an API route"))
    issues += schema_issues(document.get("input_schema"))
    issues += _graph_issues(raw_tasks)
    specs = []
    for index, task in enumerate(raw_tasks):
        if isinstance(task, dict):
            spec, task_issues = _task_spec(task, index, defaults)
            issues += task_issues
            specs.append(spec)
    issues += _template_issues(raw_tasks, {t["id"]: _deps(t) for t in tasks})
    if issues:
        raise InvalidDefinitionError(_bounded(issues))
    definition = definition_pb2.WorkflowDefinition(
        name=document["name"], tasks=specs, labels=document.get("labels", {})
    )
    size = definition.ByteSize()
    if size > MAX_COMPILED_BYTES:
        # Every workflow.started carries it, next to an input of up to 256 KiB.
        raise InvalidDefinitionError(
            [Issue("", f"the normalized definition has {size} bytes; at most {MAX_COMPILED_BYTES}")]
        )
    return CompiledDefinition(
        name=document["name"],
        description=document.get("description", ""),
        labels=dict(document.get("labels", {})),
        input_schema=document.get("input_schema"),
        document=document,
        content_hash=hashlib.sha256(canonical_json(document).encode()).hexdigest(),
        definition=definition,
    )


def _bounded(issues: list[Issue]) -> list[Issue]:
    ordered = sorted_issues(issues)
    if len(ordered) <= MAX_ISSUES:
        return ordered
    hidden = len(ordered) - MAX_ISSUES
    return [*ordered[:MAX_ISSUES], Issue("", f"{hidden} more problem(s) not listed")]


def _deps(task: dict[str, Any]) -> list[str]:
    deps = task.get("depends_on")
    return [d for d in deps if isinstance(d, str)] if isinstance(deps, list) else []


def _graph_issues(raw_tasks: list[Any]) -> list[Issue]:
    issues: list[Issue] = []
    first_index: dict[str, int] = {}
    for index, task in enumerate(raw_tasks):
        if not isinstance(task, dict) or not isinstance(task.get("id"), str):
            continue
        task_id = task["id"]
        if task_id in first_index:
            issues.append(
                Issue(
                    pointer("tasks", index, "id"),
                    f"duplicate task id {task_id!r} (first at /tasks/{first_index[task_id]})",
                )
            )
        else:
            first_index[task_id] = index
    edges: dict[str, list[str]] = {task_id: [] for task_id in first_index}
    for index, task in enumerate(raw_tasks):
        if not isinstance(task, dict) or not isinstance(task.get("id"), str):
            continue
        deps = task.get("depends_on")
        if not isinstance(deps, list):
            continue
        for dep_index, dep in enumerate(deps):
            if not isinstance(dep, str):
                continue
            at = pointer("tasks", index, "depends_on", dep_index)
            if dep not in first_index:
                issues.append(Issue(at, f"depends on unknown task {dep!r}"))
            elif dep in deps[:dep_index]:
                issues.append(Issue(at, f"{dep!r} is listed twice"))
            elif first_index[task["id"]] == index:
                edges[task["id"]].append(dep)
    for cycle in find_cycles(edges):
        issues.append(
            Issue(
                pointer("tasks", first_index[cycle[0]], "depends_on"),
                f"dependency cycle: {' → '.join(cycle)}",
            )
        )
    return issues


def _task_spec(
    task: dict[str, Any], index: int, defaults: dict[str, Any]
) -> tuple[definition_pb2.TaskSpec, list[Issue]]:
    """Normalize one task; values the schema already refused are skipped silently."""
    issues: list[Issue] = []
    at = pointer("tasks", index)

    def setting(key: str) -> tuple[Any, str]:
        if key in task:
            return task[key], f"{at}/{key}"
        return defaults.get(key), pointer("defaults", key)

    params, params_issues = _params(task, f"{at}/params")
    issues += params_issues
    spec = definition_pb2.TaskSpec(
        id=_str(task.get("id")),
        type=_str(task.get("type")),
        params_json=_params_json(params, f"{at}/params", issues),
        depends_on=_deps(task),
        queue=_str(setting("queue")[0]),
        priority=_int(setting("priority")[0]),
        timeout_ms=_duration(*setting("timeout"), issues),
        heartbeat_timeout_ms=_duration(*setting("heartbeat_timeout"), issues),
    )
    spec.retry.CopyFrom(_retry(task.get("retry"), defaults.get("retry"), at, issues))
    compensate = task.get("compensate")
    if isinstance(compensate, dict):
        compensate_params, compensate_issues = _params(compensate, f"{at}/compensate/params")
        issues += compensate_issues
        spec.compensate.CopyFrom(
            definition_pb2.CompensationSpec(
                type=_str(compensate.get("type")),
                params_json=_params_json(compensate_params, f"{at}/compensate/params", issues),
            )
        )
    if task.get("type") == DELAY:
        delay, delay_issues = parse_delay(task.get("params"), f"{at}/params")
        issues += delay_issues
        if delay is not None:
            spec.delay.CopyFrom(delay)
        if isinstance(compensate, dict):
            issues.append(Issue(f"{at}/compensate", "a delay task has nothing to compensate"))
    return spec, issues


def _params(task: dict[str, Any], at: str) -> tuple[Any, list[Issue]]:
    params = task.get("params", {})
    if task.get("type") == SHELL:
        return split_command_params(params, at)
    return params, []


def _params_json(params: Any, at: str, issues: list[Issue]) -> bytes:
    encoded = canonical_json(params).encode()
    if len(encoded) > MAX_PARAMS_BYTES:
        issues.append(
            Issue(at, f"params hold {len(encoded)} bytes as JSON; at most {MAX_PARAMS_BYTES}")
        )
    return encoded


def _retry(own: Any, default: Any, at: str, issues: list[Issue]) -> definition_pb2.RetryPolicy:
    own = own if isinstance(own, dict) else {}
    default = default if isinstance(default, dict) else {}

    def setting(key: str) -> tuple[Any, str]:
        if key in own:
            return own[key], f"{at}/retry/{key}"
        return default.get(key), pointer("defaults", "retry", key)

    initial_ms = _duration(*setting("initial_interval"), issues, DEFAULT_INITIAL_INTERVAL_MS)
    max_value, max_at = setting("max_interval")
    max_ms = _duration(max_value, max_at, issues, DEFAULT_MAX_INTERVAL_MS)
    if max_ms < initial_ms:
        issues.append(Issue(max_at, "max_interval is shorter than initial_interval"))
    return definition_pb2.RetryPolicy(
        max_attempts=_int(setting("max_attempts")[0] or DEFAULT_MAX_ATTEMPTS),
        initial_interval_ms=initial_ms,
        backoff_coefficient=_float(setting("backoff")[0] or DEFAULT_BACKOFF),
        max_interval_ms=max_ms,
        jitter=_JITTER.get(_str(setting("jitter")[0]), _JITTER[DEFAULT_JITTER]),
    )


def _template_issues(raw_tasks: list[Any], edges: dict[str, list[str]]) -> list[Issue]:
    issues: list[Issue] = []
    for index, task in enumerate(raw_tasks):
        if not isinstance(task, dict) or task.get("type") == DELAY:
            continue
        task_id = task.get("id")
        before = upstream(edges, task_id) if isinstance(task_id, str) else set()
        issues += _references(task.get("params"), pointer("tasks", index, "params"), before)
        compensate = task.get("compensate")
        if isinstance(compensate, dict) and isinstance(task_id, str):
            # A compensation runs after its task succeeded: it may read its output too.
            issues += _references(
                compensate.get("params"),
                pointer("tasks", index, "compensate", "params"),
                before | {task_id},
            )
    return issues


def _references(params: Any, at: str, allowed: set[str]) -> list[Issue]:
    if params is None:
        return []
    try:
        found = templates.references(params)
    except templates.TemplateError as error:
        return [Issue(at + error.pointer, str(error))]
    issues = []
    for reference in found:
        task_id = reference.task_id
        if task_id is not None and task_id not in allowed:
            issues.append(
                Issue(
                    at + reference.pointer,
                    f"{{{{ {'.'.join(reference.path)} }}}} reads task {task_id!r}, "
                    "which is not upstream of this task",
                )
            )
    return issues


def _duration(value: Any, at: str, issues: list[Issue], default: int = 0) -> int:
    if not isinstance(value, str):
        return default
    try:
        return parse_duration_ms(value)
    except ValueError as error:
        if is_duration(value):  # well-formed, so the schema let it through
            issues.append(Issue(at, str(error)))
        return default


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _int(value: Any) -> int:
    # Beyond int32 the schema has refused it already, and the spec's field cannot hold it.
    if isinstance(value, int) and not isinstance(value, bool) and -(2**31) <= value < 2**31:
        return value
    return 0


def _float(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0
