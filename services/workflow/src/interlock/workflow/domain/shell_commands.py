"""A ``shell`` task's string ``command``, split into arguments before any template is filled.

The worker runs ``command`` as an argument list, never through a shell. A string such as
``"grep {{ input.pattern }} data.txt"`` is split here, when the definition is saved, so
each template stays inside one argument: whatever the run input holds later (spaces,
quotes, ``--option``) is substituted into that argument alone and can never become
another one (argument injection). The worker refuses a string ``command``.
"""

from __future__ import annotations

import shlex
from typing import Any

from interlock.workflow.domain.issues import Issue

SHELL = "shell"
"""The task type whose params this module normalizes."""


def split_command_params(params: Any, at: str) -> tuple[Any, list[Issue]]:
    """``params`` with a string ``command`` turned into its argument list.

    Args:
        params: A shell task's params as written.
        at: JSON Pointer of ``params``, for issues.

    Returns:
        The params (unchanged unless ``command`` was a string), and the problems found.
    """
    if not isinstance(params, dict) or not isinstance(params.get("command"), str):
        return params, []
    try:
        argv = shlex.split(_tighten_templates(params["command"]))
    except ValueError as error:  # an unclosed quote
        return params, [Issue(f"{at}/command", f"cannot split the command: {error}")]
    return {**params, "command": argv}, []


def _tighten_templates(text: str) -> str:
    """``{{ a.b }}`` written as ``{{a.b}}``, so that splitting keeps it one word.

    A scan with ``str.find`` (linear), not a regular expression; a template whose inside
    still holds whitespace is left as it is (the template check reports it).
    """
    parts: list[str] = []
    position = 0
    while (start := text.find("{{", position)) != -1:
        end = text.find("}}", start + 2)
        if end == -1:
            break
        inner = text[start + 2 : end].strip()
        if inner and not any(char.isspace() for char in inner):
            parts += [text[position:start], "{{", inner, "}}"]
        else:
            parts.append(text[position : end + 2])
        position = end + 2
    parts.append(text[position:])
    return "".join(parts)
