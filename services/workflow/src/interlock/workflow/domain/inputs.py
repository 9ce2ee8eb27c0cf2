"""Checking a run's input against its definition's ``input_schema``."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator

from interlock.workflow.domain.errors import InvalidInputError
from interlock.workflow.domain.issues import Issue, pointer, sorted_issues
from interlock.workflow.domain.limits import MAX_ISSUES


def input_validator(schema: dict[str, Any] | None) -> Draft202012Validator | None:
    """Build the validator for a definition's input schema (``None`` when it has none)."""
    return None if schema is None else Draft202012Validator(schema)


def check_input(validator: Draft202012Validator | None, value: Any) -> None:
    """Raise unless ``value`` satisfies the input schema.

    Args:
        validator: From :func:`input_validator`; ``None`` accepts any input.
        value: The run's input.

    Raises:
        InvalidInputError: One issue per problem, pointers under ``/input``.
    """
    if validator is None:
        return
    issues = [
        Issue(pointer("input", *error.absolute_path), error.message)
        for error in validator.iter_errors(value)
    ]
    if issues:
        raise InvalidInputError(sorted_issues(issues)[:MAX_ISSUES])
