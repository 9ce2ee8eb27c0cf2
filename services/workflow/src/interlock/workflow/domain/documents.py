"""Reading a definition document sent as JSON or YAML (``Content-Type`` decides)."""

from __future__ import annotations

import re
from typing import Any

import yaml

from interlock.common import strict_json
from interlock.workflow.domain.errors import (
    InvalidDocumentError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
)
from interlock.workflow.domain.limits import MAX_DEFINITION_BYTES, MAX_NESTING

JSON_MEDIA_TYPES = frozenset({"application/json"})
YAML_MEDIA_TYPES = frozenset({"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"})


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 scalars where 1.1 surprises people, no aliases.

    Unquoted dates (``2027-03-01``) stay strings instead of ``date`` objects, and
    ``9:30`` stays a string instead of the sexagesimal integer 570. Aliases (``*name``)
    are refused: a few nested ones expand into an exponentially large document. A key
    repeated in one mapping is an error (YAML 1.2 forbids it; PyYAML kept the last).
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        """Construct a mapping, refusing a key it holds twice."""
        if isinstance(node, yaml.MappingNode):
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if not isinstance(key, str):
                    continue  # refused later: keys must be strings
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key[:100]!r}", key_node.start_mark
                    )
                seen.add(key)
        return super().construct_mapping(node, deep=deep)

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        """Compose the next node, refusing aliases."""
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not accepted", mark)
        return super().compose_node(parent, index)


_INT = re.compile(r"^(?:[-+]?(?:0|[1-9][0-9_]*)|0x[0-9a-fA-F_]+|0o[0-7_]+)$")
_FLOAT = re.compile(
    r"^(?:[-+]?(?:[0-9][0-9_]*)?\.[0-9_]+(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
_REPLACED = {"tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"}
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _REPLACED]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:int", _INT, list("-+0123456789"))
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))


def media_type(content_type: str | None) -> str:
    """The media type of a ``Content-Type`` header, lower-cased, without parameters."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def parse_document(body: bytes, content_type: str | None) -> Any:
    """Parse a definition document.

    Args:
        body: The request body.
        content_type: Its ``Content-Type``: JSON (``application/json``) or YAML
            (``application/yaml``, ``application/x-yaml``, ``text/yaml``).

    Returns:
        The document as JSON values (dicts, lists, strings, numbers, booleans, None).

    Raises:
        UnsupportedMediaTypeError: The content type is neither JSON nor YAML.
        InvalidDocumentError: The body is too large, not UTF-8, or does not parse.
    """
    kind = media_type(content_type)
    if kind not in JSON_MEDIA_TYPES and kind not in YAML_MEDIA_TYPES:
        raise UnsupportedMediaTypeError(
            kind or "none", accepted=(*JSON_MEDIA_TYPES, "application/yaml")
        )
    if len(body) > MAX_DEFINITION_BYTES:
        raise PayloadTooLargeError(
            f"the definition has {len(body)} bytes; at most {MAX_DEFINITION_BYTES} are accepted"
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidDocumentError("the definition is not UTF-8") from error
    if kind in JSON_MEDIA_TYPES:
        return parse_json(text, what="the definition")
    try:
        document = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as error:
        raise InvalidDocumentError(f"not YAML: {error}") from error
    except RecursionError as error:
        raise InvalidDocumentError(f"the definition nests deeper than {MAX_NESTING}") from error
    check_nesting(document, what="the definition")
    value = _jsonable(document)
    try:
        strict_json.check_value(value)
    except strict_json.UnacceptableJsonError as error:
        raise InvalidDocumentError(f"the definition is not storable: {error}") from error
    return value


def parse_json(text: str | bytes, *, what: str) -> Any:
    """Parse JSON, refusing deep nesting and values no store can hold.

    Deeper than ``MAX_NESTING`` is refused, and whatever
    :func:`interlock.common.strict_json.loads` refuses (NaN, NUL, ...).

    Args:
        text: The JSON text.
        what: What it is, for the error message (e.g. ``"the request body"``).

    Raises:
        InvalidDocumentError: It is not JSON, or nests too deep.
    """
    try:
        value = strict_json.loads(text)
    except strict_json.UnacceptableJsonError as error:
        raise InvalidDocumentError(f"{what} is refused: {error}") from error
    check_nesting(value, what=what)
    return value


def check_nesting(value: Any, *, what: str) -> None:
    """Raise :class:`InvalidDocumentError` when ``value`` nests deeper than ``MAX_NESTING``."""
    stack = [(value, 1)]
    while stack:
        current, depth = stack.pop()
        if isinstance(current, dict):
            children = list(current.values())
        elif isinstance(current, list):
            children = current
        else:
            continue
        if depth > MAX_NESTING:
            raise InvalidDocumentError(f"{what} nests deeper than {MAX_NESTING} levels")
        stack.extend((child, depth + 1) for child in children)


def _jsonable(value: Any) -> Any:
    """Check that a YAML document holds only JSON values (e.g. no binary, no set)."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise InvalidDocumentError("the definition holds a number JSON cannot represent")
        return value
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidDocumentError(f"mapping key {key!r} is not a string")
            out[key] = _jsonable(item)
        return out
    raise InvalidDocumentError(f"the definition holds a {type(value).__name__}, not a JSON value")
