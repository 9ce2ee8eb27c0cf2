"""Checking a run's input against its definition's ``input_schema``.

Patterns (``pattern``, ``patternProperties``) are matched with RE2, whose matching
time is linear in the input: with Python's backtracking ``re``, ``^(a+)+$`` against
thirty ``a`` and a ``b`` keeps a CPU busy for minutes, and a thread cannot be
interrupted. A definition whose pattern RE2 cannot compile (backreferences,
lookaround) is refused when it is saved (:func:`schema_issues`), as is a ``$ref`` that
does not resolve inside the schema itself: nothing is ever fetched.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import re2
from jsonschema import Draft202012Validator, ValidationError, validators
from jsonschema.exceptions import SchemaError
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from interlock.workflow.domain.errors import InvalidInputError
from interlock.workflow.domain.issues import Issue, pointer, sorted_issues
from interlock.workflow.domain.limits import MAX_ISSUES

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a refused pattern is reported, not logged to stderr


def _search(pattern: str, text: str) -> bool:
    return re2.compile(pattern, _RE2_OPTIONS).search(text) is not None


def _pattern(
    validator: Any, pattern: str, instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not _search(pattern, instance):
        yield ValidationError(f"{instance[:100]!r} does not match {pattern[:100]!r}")


def _pattern_properties(
    validator: Any, patterns: dict[str, Any], instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if _search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


InputValidator = validators.extend(
    Draft202012Validator, {"pattern": _pattern, "patternProperties": _pattern_properties}
)
"""Draft 2020-12, with RE2 for patterns."""


def schema_issues(schema: Any) -> list[Issue]:
    """What makes ``schema`` unusable as an input schema, pointers under ``/input_schema``.

    It must be a valid Draft 2020-12 schema, its patterns RE2 syntax, and every
    ``$ref`` a fragment (``#/$defs/...``) that resolves within it.
    """
    if not isinstance(schema, dict):
        return []
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as error:
        return [
            Issue(
                pointer("input_schema", *error.absolute_path),
                f"not a valid JSON Schema: {error.message}",
            )
        ]
    issues = []
    resolver = Registry().resolver_with_root(DRAFT202012.create_resource(schema))
    for path, keyword, value in _keywords(schema, ("input_schema",)):
        at = pointer(*path)
        if keyword in ("pattern", "patternProperties"):
            for pattern in [value] if keyword == "pattern" else list(value):
                try:
                    re2.compile(pattern, _RE2_OPTIONS)
                except re2.error:
                    issues.append(Issue(at, f"pattern {pattern[:100]!r} is not RE2 syntax"))
        elif not value.startswith("#"):
            issues.append(Issue(at, f"$ref {value[:100]!r} is not within the schema (#...)"))
        else:
            try:
                resolver.lookup(value)
            except Unresolvable:
                issues.append(Issue(at, f"$ref {value[:100]!r} resolves to nothing"))
    return issues


_KEYWORD_TYPES: dict[str, type] = {
    "pattern": str,
    "patternProperties": dict,
    "$ref": str,
    "$dynamicRef": str,
}


def _keywords(
    value: Any, path: tuple[str | int, ...]
) -> Iterator[tuple[tuple[str | int, ...], str, Any]]:
    """Every pattern, patternProperties and $ref/$dynamicRef in a schema, with its path."""
    pending: list[tuple[Any, tuple[str | int, ...]]] = [(value, path)]
    while pending:
        current, at = pending.pop()
        if isinstance(current, list):
            pending.extend((item, (*at, index)) for index, item in enumerate(current))
            continue
        if not isinstance(current, dict):
            continue
        for key, item in current.items():
            if isinstance(item, _KEYWORD_TYPES.get(key, ())):
                yield (*at, key), key, item
            pending.append((item, (*at, key)))


def input_validator(schema: dict[str, Any] | None) -> Any:
    """Build the validator for a definition's input schema (``None`` when it has none)."""
    return None if schema is None else InputValidator(schema)


def check_input(validator: Any, value: Any) -> None:
    """Raise unless ``value`` satisfies the input schema.

    Args:
        validator: From :func:`input_validator`; ``None`` accepts any input.
        value: The run's input.

    Raises:
        InvalidInputError: One issue per problem, pointers under ``/input``.
    """
    if validator is None:
        return
    try:
        issues = [
            Issue(pointer("input", *error.absolute_path), error.message)
            for error in validator.iter_errors(value)
        ]
    except (Unresolvable, re2.error) as error:
        # Schemas saved before these were refused at definition time.
        issues = [Issue("/input", f"the workflow's input_schema cannot be applied: {error}")]
    if issues:
        raise InvalidInputError(sorted_issues(issues)[:MAX_ISSUES])
