"""Templates in task parameters: ``{{ input.source }}``, ``{{ tasks.extract.output.body }}``.

The workflow service validates them when a definition is saved (every
``tasks.<id>`` must name an upstream task); the scheduler renders them when it
schedules a task, from the run's input and the outputs of finished tasks.

A string that is exactly one template takes the referenced value as it is
(a number stays a number, an object stays an object); templates inside a
longer string are replaced by their JSON text (strings unquoted).

``{{ secrets.NAME }}`` names a tenant secret. The scheduler leaves it in place
(it never sees secret values), and refuses a value from the run input or a task
output that carries such a reference, so data can never ask for a secret; only
the worker fills them in (:func:`fill_secrets`) just before the task runs.

A template is ``{{`` up to the next ``}}``, its expression stripped of
whitespace. The scan finds both with ``str.find``, so it costs one pass over the
string whatever it holds: the regular expression it replaces backtracked, and a
``{{`` followed by 20,000 spaces kept a service's event loop busy for most of an
hour.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from interlock.common.errors import InterlockError

_OPEN, _CLOSE = "{{", "}}"
_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*")


class TemplateError(InterlockError):
    """A template is malformed, names an unknown root, or points at nothing."""

    def __init__(self, message: str, *, pointer: str) -> None:
        super().__init__(message)
        self.pointer = pointer
        """JSON Pointer (RFC 6901) of the string holding the template, within the params."""


@dataclass(frozen=True)
class Reference:
    """One template found in a parameter value."""

    pointer: str
    """JSON Pointer of the string that holds it, within the params."""
    path: tuple[str, ...]
    """Dotted path split, e.g. ``("tasks", "extract", "output", "body")``."""

    @property
    def task_id(self) -> str | None:
        """The upstream task it reads, for ``tasks.<id>...`` references."""
        return self.path[1] if self.path[0] == "tasks" else None


SECRETS = "secrets"
"""The root of secret references: ``{{ secrets.NAME }}``."""
ROOTS = frozenset({"input", "tasks", SECRETS})
"""What a template may start with."""
MAX_EXPRESSION_CHARS = 256
"""Longest expression between ``{{`` and ``}}``."""


def references(params: Any) -> list[Reference]:
    """Every template in ``params`` (any JSON value), in document order.

    Raises:
        TemplateError: A template is empty, not a dotted path, has an unknown
            root, or a ``tasks`` reference that lacks the task id.
    """
    found = []
    for pointer, text in _strings(params, ""):
        for _, _, expression in scan(text):
            if len(expression) > MAX_EXPRESSION_CHARS:
                raise TemplateError(
                    f"a template expression is longer than {MAX_EXPRESSION_CHARS} characters",
                    pointer=pointer,
                )
            if not _PATH.fullmatch(expression):
                raise TemplateError(f"not a dotted path: {{{{ {expression} }}}}", pointer=pointer)
            path = tuple(expression.split("."))
            if path[0] not in ROOTS:
                raise TemplateError(
                    f"unknown root {path[0]!r} (expected input, tasks or secrets)",
                    pointer=pointer,
                )
            if path[0] == SECRETS and len(path) != 2:
                raise TemplateError("a secret reference reads secrets.<NAME>", pointer=pointer)
            if path[0] == "tasks" and len(path) < 3:
                raise TemplateError(
                    "a task reference reads tasks.<id>.output[.field...]", pointer=pointer
                )
            found.append(Reference(pointer, path))
    return found


def render(params: Any, context: Mapping[str, Any]) -> Any:
    """``params`` with every template replaced from ``context``.

    Args:
        params: Any JSON value.
        context: ``{"input": <run input>, "tasks": {<id>: {"output": ...}}}``.

    Raises:
        TemplateError: A reference points at nothing in ``context``.
    """
    return _render(params, context, "")


def _render(value: Any, context: Mapping[str, Any], pointer: str) -> Any:
    if isinstance(value, str):
        return _render_string(value, context, pointer)
    if isinstance(value, list):
        return [_render(item, context, f"{pointer}/{i}") for i, item in enumerate(value)]
    if isinstance(value, dict):
        return {k: _render(v, context, f"{pointer}/{_escape(k)}") for k, v in value.items()}
    return value


def scan(text: str) -> Iterator[tuple[int, int, str]]:
    """The templates in ``text``: start, end (exclusive) and stripped expression of each.

    One pass: every character is looked at a bounded number of times.
    """
    position = 0
    while (start := text.find(_OPEN, position)) >= 0:
        close = text.find(_CLOSE, start + len(_OPEN))
        if close < 0:
            return
        end = close + len(_CLOSE)
        yield start, end, text[start + len(_OPEN) : close].strip()
        position = end


def _render_string(text: str, context: Mapping[str, Any], pointer: str) -> Any:
    found = list(scan(text))
    if not found:
        return text
    if len(found) == 1 and found[0][:2] == (0, len(text)):
        expression = found[0][2]
        if _secret_name(expression) is not None:
            return text  # the worker's to fill
        value = _lookup(expression, context, pointer)
        _refuse_secret_references(value, pointer)
        return value

    def rendered(expression: str, template: str) -> str:
        if _secret_name(expression) is not None:
            return template
        value = _lookup(expression, context, pointer)
        text = value if isinstance(value, str) else json.dumps(value)
        _refuse_secret_references(text, pointer)
        return text

    return _substitute(text, found, rendered)


def _substitute(
    text: str, found: list[tuple[int, int, str]], replacement: Callable[[str, str], str]
) -> str:
    """``text`` with each template found replaced by ``replacement(expression, template)``."""
    pieces = []
    position = 0
    for start, end, expression in found:
        pieces += [text[position:start], replacement(expression, text[start:end])]
        position = end
    pieces.append(text[position:])
    return "".join(pieces)


def _secret_name(expression: str) -> str | None:
    root, dot, name = expression.partition(".")
    return name if root == SECRETS and dot and name else None


def _refuse_secret_references(value: Any, pointer: str) -> None:
    """Raise if ``value`` carries a secret reference: data must not ask for secrets."""
    for _, text in _strings(value, ""):
        if SECRETS in text and _secret_names_in(text):
            raise TemplateError(
                "a value from the run input or a task output holds a secret reference",
                pointer=pointer,
            )


def _secret_names_in(text: str) -> set[str]:
    names = (_secret_name(expression) for _, _, expression in scan(text))
    return {name for name in names if name is not None}


def secret_names(params: Any) -> set[str]:
    """The names of the secrets ``params`` (any JSON value) refers to."""
    names: set[str] = set()
    for _, text in _strings(params, ""):
        if SECRETS in text:
            names |= _secret_names_in(text)
    return names


def fill_secrets(params: Any, values: Mapping[str, str]) -> Any:
    """``params`` with every ``{{ secrets.NAME }}`` replaced by its value.

    Other templates (text that merely looks like one, left by the scheduler's
    rendering) stay as they are.

    Raises:
        TemplateError: A referenced secret is not in ``values``.
    """
    return _fill(params, values, "")


def _fill(value: Any, values: Mapping[str, str], pointer: str) -> Any:
    if isinstance(value, str):
        if SECRETS not in value:
            return value

        def secret_value(expression: str, template: str) -> str:
            name = _secret_name(expression)
            if name is None:
                return template
            if name not in values:
                raise TemplateError(f"no secret {name!r}", pointer=pointer)
            return values[name]

        return _substitute(value, list(scan(value)), secret_value)
    if isinstance(value, list):
        return [_fill(item, values, f"{pointer}/{i}") for i, item in enumerate(value)]
    if isinstance(value, dict):
        return {k: _fill(v, values, f"{pointer}/{_escape(k)}") for k, v in value.items()}
    return value


def _lookup(expression: str, context: Mapping[str, Any], pointer: str) -> Any:
    current: Any = context
    for part in expression.split("."):
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            raise TemplateError(f"{{{{ {expression} }}}} has no value", pointer=pointer)
    return current


def _strings(value: Any, pointer: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield pointer, value
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{pointer}/{index}")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{pointer}/{_escape(key)}")


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")
