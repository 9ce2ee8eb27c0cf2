"""Task conditions (``when``): a small, safe expression language over run data.

The workflow service parses a condition when a definition is saved (and checks that
it reads only upstream tasks); the scheduler evaluates it when the task's trigger rule
lets it run. Nothing is executed: the text is read by a hand-written recursive-descent
parser into a tree of the forms below, and the tree is walked over plain JSON values.

Grammar (lowest precedence first)::

    expr    := or
    or      := and ("or" and)*
    and     := not ("and" not)*
    not     := "not" not | compare
    compare := operand (("==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "not in") operand)?
    operand := literal | path | "(" expr ")"
    literal := number | "string" | 'string' | true | false | null
    path    := ("input" | "tasks") ("." name | "[" digits "]")*

``input.<field>...`` reads the run input, ``tasks.<id>.output...`` an upstream task's
output and ``tasks.<id>.status`` its status (``succeeded``, ``skipped``, ...). A path
that leads nowhere is ``null``. ``and``/``or``/``not`` take JSON truthiness (``null``,
``false``, ``0``, ``""``, ``[]`` and ``{}`` are false). Equality is by JSON value
(``true`` is not ``1``); ordering compares two numbers or two strings, anything else is
a :class:`ConditionError`, as is ``in`` with a right side that is not a list, string or
object.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from interlock.common.errors import InterlockError

__all__ = [
    "MAX_CONDITION_CHARS",
    "Condition",
    "ConditionError",
    "evaluate",
    "parse",
]

MAX_CONDITION_CHARS = 1024
"""Longest condition text."""
MAX_DEPTH = 32
"""Deepest nesting of parentheses and ``not``."""
ROOTS = frozenset({"input", "tasks"})
"""What a path may start with."""

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
      | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<op>==|!=|<=|>=|<|>|\(|\)|\[|\]|\.)
      | (?P<name>[A-Za-z_][A-Za-z0-9_-]*)
    )""",
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "not", "in", "true", "false", "null"}
_LITERALS: dict[str, Any] = {"true": True, "false": False, "null": None}
_ORDERING = {"<", "<=", ">", ">="}


class ConditionError(InterlockError):
    """A condition is malformed, or cannot be evaluated over the values it reads."""


@dataclass(frozen=True)
class Literal:
    """A constant JSON value."""

    value: Any


@dataclass(frozen=True)
class Path:
    """A value read from the run: ``("input", "region")``, ``("tasks", "x", "output")``."""

    parts: tuple[str | int, ...]

    @property
    def task_id(self) -> str | None:
        """The task a ``tasks.<id>...`` path reads."""
        if self.parts[0] == "tasks" and len(self.parts) > 1 and isinstance(self.parts[1], str):
            return self.parts[1]
        return None


@dataclass(frozen=True)
class Not:
    """``not operand``."""

    operand: Node


@dataclass(frozen=True)
class Logical:
    """``left and right`` / ``left or right``."""

    operator: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Compare:
    """``left <operator> right``."""

    operator: str
    left: Node
    right: Node


Node = Literal | Path | Not | Logical | Compare


@dataclass(frozen=True)
class Condition:
    """A parsed condition."""

    text: str
    tree: Node

    def paths(self) -> list[Path]:
        """Every path the condition reads, in text order."""
        found: list[Path] = []
        stack: list[Node] = [self.tree]
        while stack:
            node = stack.pop()
            if isinstance(node, Path):
                found.append(node)
            elif isinstance(node, Not):
                stack.append(node.operand)
            elif isinstance(node, Logical | Compare):
                stack += [node.right, node.left]
        return found


def parse(text: str) -> Condition:
    """Parse a condition.

    Raises:
        ConditionError: The text is too long, malformed, nested too deep, or a path
            has an unknown root or a ``tasks`` path lacks ``.output`` or ``.status``.
    """
    if len(text) > MAX_CONDITION_CHARS:
        raise ConditionError(f"a condition has at most {MAX_CONDITION_CHARS} characters")
    parser = _Parser(_tokens(text))
    tree = parser.expression(0)
    if parser.peek() is not None:
        raise ConditionError(f"unexpected {parser.peek()[1]!r}")  # type: ignore[index]
    return Condition(text, tree)


def evaluate(condition: Condition, context: Mapping[str, Any]) -> bool:
    """Whether ``condition`` holds over ``context``.

    Args:
        condition: A parsed condition.
        context: ``{"input": <run input>, "tasks": {<id>: {"output": ..., "status": ...}}}``.

    Raises:
        ConditionError: An ordering or ``in`` over values of the wrong kinds.
    """
    return _truthy(_value(condition.tree, context))


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise ConditionError(f"unexpected character {text[position:].lstrip()[:1]!r}")
        kind = match.lastgroup
        assert kind is not None
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self._tokens = tokens
        self._at = 0

    def peek(self) -> tuple[str, str] | None:
        return self._tokens[self._at] if self._at < len(self._tokens) else None

    def _take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise ConditionError("the condition ends too early")
        self._at += 1
        return token

    def _accept(self, value: str) -> bool:
        token = self.peek()
        if token is not None and token[1] == value and token[0] in ("op", "name"):
            self._at += 1
            return True
        return False

    def _expect(self, value: str) -> None:
        if not self._accept(value):
            found = self.peek()
            raise ConditionError(f"expected {value!r}, found {found[1] if found else 'the end'!r}")

    def expression(self, depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise ConditionError(f"a condition nests at most {MAX_DEPTH} levels")
        node = self._and(depth)
        while self._accept("or"):
            node = Logical("or", node, self._and(depth))
        return node

    def _and(self, depth: int) -> Node:
        node = self._not(depth)
        while self._accept("and"):
            node = Logical("and", node, self._not(depth))
        return node

    def _not(self, depth: int) -> Node:
        if self._accept("not"):
            if depth + 1 > MAX_DEPTH:
                raise ConditionError(f"a condition nests at most {MAX_DEPTH} levels")
            return Not(self._not(depth + 1))
        return self._compare(depth)

    def _compare(self, depth: int) -> Node:
        left = self._operand(depth)
        token = self.peek()
        if token is None:
            return left
        if token[0] == "op" and token[1] in ("==", "!=", *_ORDERING):
            self._at += 1
            return Compare(token[1], left, self._operand(depth))
        if token == ("name", "in"):
            self._at += 1
            return Compare("in", left, self._operand(depth))
        following = self._tokens[self._at + 1 : self._at + 2]
        if token == ("name", "not") and following == [("name", "in")]:
            self._at += 2
            return Compare("not in", left, self._operand(depth))
        return left

    def _operand(self, depth: int) -> Node:
        kind, value = self._take()
        if kind == "number":
            return Literal(json.loads(value))
        if kind == "string":
            return Literal(_unquote(value))
        if kind == "op" and value == "(":
            node = self.expression(depth + 1)
            self._expect(")")
            return node
        if kind == "name" and value in _LITERALS:
            return Literal(_LITERALS[value])
        if kind == "name" and value not in _KEYWORDS:
            return self._path(value)
        raise ConditionError(f"unexpected {value!r}")

    def _path(self, root: str) -> Path:
        if root not in ROOTS:
            raise ConditionError(f"unknown name {root!r} (a path starts with input or tasks)")
        parts: list[str | int] = [root]
        while True:
            if self._accept("."):
                kind, value = self._take()
                if kind != "name" and kind != "number":
                    raise ConditionError(f"expected a field name after '.', found {value!r}")
                parts.append(value)
            elif self._accept("["):
                kind, value = self._take()
                if kind != "number" or not value.isdigit():
                    raise ConditionError(f"expected an index in [], found {value!r}")
                parts.append(int(value))
                self._expect("]")
            else:
                break
        if root == "tasks" and (len(parts) < 3 or parts[2] not in ("output", "status")):
            raise ConditionError("a task path reads tasks.<id>.output[...] or tasks.<id>.status")
        return Path(tuple(parts))


def _unquote(quoted: str) -> str:
    body = quoted[1:-1]
    if quoted[0] == "'":
        body = body.replace("\\'", "'").replace('"', '\\"')
    try:
        text: str = json.loads(f'"{body}"')
    except json.JSONDecodeError as error:
        raise ConditionError(f"bad string literal {quoted}") from error
    return text


def _value(node: Node, context: Mapping[str, Any]) -> Any:
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, Path):
        return _lookup(node, context)
    if isinstance(node, Not):
        return not _truthy(_value(node.operand, context))
    if isinstance(node, Logical):
        left = _truthy(_value(node.left, context))
        if node.operator == "and":
            return left and _truthy(_value(node.right, context))
        return left or _truthy(_value(node.right, context))
    return _compare(node, _value(node.left, context), _value(node.right, context))


def _lookup(path: Path, context: Mapping[str, Any]) -> Any:
    value: Any = context
    for part in path.parts:
        if isinstance(part, int):
            value = value[part] if isinstance(value, list) and part < len(value) else None
        elif isinstance(value, Mapping):
            value = value.get(part)
        else:
            return None
        if value is None:
            return None
    return value


def _compare(node: Compare, left: Any, right: Any) -> bool:
    operator = node.operator
    if operator == "==":
        return _same(left, right)
    if operator == "!=":
        return not _same(left, right)
    if operator in ("in", "not in"):
        if isinstance(right, str) and isinstance(left, str):
            found = left in right
        elif isinstance(right, list):
            found = any(_same(left, item) for item in right)
        elif isinstance(right, Mapping) and isinstance(left, str):
            found = left in right
        else:
            raise ConditionError(f"cannot test {_kind(left)} in {_kind(right)}")
        return found if operator == "in" else not found
    if not (
        (_is_number(left) and _is_number(right))
        or (isinstance(left, str) and isinstance(right, str))
    ):
        raise ConditionError(f"cannot order {_kind(left)} and {_kind(right)} with {operator}")
    if operator == "<":
        return bool(left < right)
    if operator == "<=":
        return bool(left <= right)
    if operator == ">":
        return bool(left > right)
    return bool(left >= right)


def _same(left: Any, right: Any) -> bool:
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left is right
    return bool(left == right)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if _is_number(value):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _truthy(value: Any) -> bool:
    return bool(value) if not isinstance(value, bool) else value
