"""Roles and the one permission table for every route of every service.

The gateway's authorizer (IAM) looks up each request here: :func:`find_rule`
returns the rule of a ``(method, path)``, and :func:`is_allowed` says whether
roles may use it. A route missing from the table is denied, so a service
adding a route adds its rule here in the same change (``docs/permissions.md``
is generated from this table; a test keeps it in step).

Roles are nested: ``admin`` ⊃ ``operator`` ⊃ ``developer`` ⊃ ``viewer``.
A rule names the least role that may call the route.

Path templates use ``{name}`` for one path segment and ``{name...}`` (last
only) for one or more segments; the query string is ignored.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = [
    "PERMISSIONS",
    "PUBLIC",
    "SERVICE_NAMES",
    "Role",
    "Rule",
    "find_rule",
    "implied_roles",
    "is_allowed",
    "parse_roles",
    "permissions_markdown",
]


class Role(StrEnum):
    """A role; each includes every role below it."""

    VIEWER = "viewer"
    """Reads runs, workflows, executions, artifacts, dead letters."""
    DEVELOPER = "developer"
    """Also defines workflows, starts runs, uploads artifacts, subscribes."""
    OPERATOR = "operator"
    """Also cancels, pauses, resumes, retries runs; manages dead letters and timers."""
    ADMIN = "admin"
    """Also manages users, API keys, tenants and signing keys."""


_RANK = {Role.VIEWER: 0, Role.DEVELOPER: 1, Role.OPERATOR: 2, Role.ADMIN: 3}

SERVICE_NAMES = ("iam", "workflow", "scheduler", "worker", "metadata", "notification", "artifact")
"""The seven services, each serving its OpenAPI document at ``/api/v1/<name>/openapi.json``."""

PUBLIC = None
"""The ``role`` of a rule that needs no authentication (login, refresh, JWKS)."""


def implied_roles(roles: Iterable[str]) -> frozenset[Role]:
    """Every role ``roles`` grant, lower ones included; unknown names are ignored."""
    return _implied_roles(frozenset(roles))


@functools.lru_cache(maxsize=64)
def _implied_roles(roles: frozenset[str]) -> frozenset[Role]:
    # Cached: the authorizer asks on every request, and few role sets exist.
    ranks = [_RANK[Role(name)] for name in roles if name in Role.__members__.values()]
    if not ranks:
        return frozenset()
    top = max(ranks)
    return frozenset(role for role, rank in _RANK.items() if rank <= top)


def parse_roles(names: Iterable[str]) -> list[Role]:
    """Validate role names, keeping their order and dropping repeats.

    Raises:
        ValueError: A name is not a role.
    """
    parsed: list[Role] = []
    for name in names:
        role = Role(name)
        if role not in parsed:
            parsed.append(role)
    return parsed


@dataclass(frozen=True)
class Rule:
    """Who may call one route."""

    method: str
    """HTTP method, upper case."""
    path: str
    """Path template, e.g. ``/api/v1/runs/{run_id}/cancel``."""
    service: str
    """The service that serves it."""
    role: Role | None
    """Least role allowed, or :data:`PUBLIC`."""
    _pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_pattern", _compile(self.path))

    @property
    def pattern(self) -> re.Pattern[str]:
        """The compiled path template."""
        return self._pattern

    def matches(self, method: str, path: str) -> bool:
        """Whether this rule covers ``method`` on ``path`` (no query string)."""
        return method == self.method and self._pattern.fullmatch(path) is not None


_SEGMENT = re.compile(r"\{([a-z_]+)(\.\.\.)?\}")


def _compile(template: str) -> re.Pattern[str]:
    pattern = ""
    position = 0
    for match in _SEGMENT.finditer(template):
        pattern += re.escape(template[position : match.start()])
        pattern += "[^/]+(?:/[^/]+)*" if match.group(2) else "[^/]+"
        position = match.end()
    pattern += re.escape(template[position:])
    return re.compile(pattern)


def _rules(service: str, role: Role | None, *routes: str) -> list[Rule]:
    rules = []
    for route in routes:
        method, path = route.split(" ", 1)
        rules.append(Rule(method, path, service, role))
    return rules


PERMISSIONS: tuple[Rule, ...] = (
    # iam
    *_rules(
        "iam",
        PUBLIC,
        "POST /api/v1/auth/login",
        "POST /api/v1/auth/password",
        "POST /api/v1/auth/refresh",
        "GET /.well-known/jwks.json",
    ),
    *_rules("iam", Role.VIEWER, "GET /api/v1/auth/me", "POST /api/v1/auth/logout"),
    # Browser sessions (the console): signed in and refreshed by cookie, public like
    # login and refresh; signing out needs the session (and its CSRF header).
    *_rules("iam", PUBLIC, "POST /api/v1/auth/session", "POST /api/v1/auth/session/refresh"),
    *_rules("iam", Role.VIEWER, "DELETE /api/v1/auth/session"),
    *_rules(
        "iam",
        Role.ADMIN,
        "GET /api/v1/users",
        "POST /api/v1/users",
        "GET /api/v1/users/{user_id}",
        "PATCH /api/v1/users/{user_id}",
        "DELETE /api/v1/users/{user_id}",
        "POST /api/v1/users/{user_id}/unlock",
        "GET /api/v1/api-keys",
        "POST /api/v1/api-keys",
        "DELETE /api/v1/api-keys/{key_id}",
        "GET /api/v1/tenants",
        "POST /api/v1/tenants",
        "GET /api/v1/signing-keys",
        "POST /api/v1/signing-keys/rotate",
    ),
    # Secrets are written and deleted by operators, listed (names only) by developers
    # who reference them in definitions; no route returns a value.
    *_rules("iam", Role.DEVELOPER, "GET /api/v1/secrets"),
    *_rules("iam", Role.OPERATOR, "PUT /api/v1/secrets/{name}", "DELETE /api/v1/secrets/{name}"),
    # workflow
    *_rules(
        "workflow",
        Role.VIEWER,
        "GET /api/v1/workflows/schema",
        "GET /api/v1/workflows",
        "GET /api/v1/workflows/{name}",
        "GET /api/v1/workflows/{name}/versions",
        "GET /api/v1/workflows/{name}/versions/{version}",
        "GET /api/v1/runs",
        "GET /api/v1/runs/{run_id}",
    ),
    *_rules(
        "workflow",
        Role.DEVELOPER,
        "POST /api/v1/workflows",
        "PUT /api/v1/workflows/{name}",
        "DELETE /api/v1/workflows/{name}",
        "POST /api/v1/workflows/{name}/runs",
        "POST /api/v1/workflows/{name}/runs:batch",
    ),
    *_rules(
        "workflow",
        Role.OPERATOR,
        "POST /api/v1/runs/{run_id}/cancel",
        "POST /api/v1/runs/{run_id}/pause",
        "POST /api/v1/runs/{run_id}/resume",
        "POST /api/v1/runs/{run_id}/retry",
    ),
    *_rules("workflow", Role.OPERATOR, "GET /api/v1/parked-events/workflow"),
    # scheduler
    *_rules("scheduler", Role.VIEWER, "GET /api/v1/dead-letters"),
    *_rules(
        "scheduler",
        Role.OPERATOR,
        "GET /api/v1/parked-events/scheduler",
        "POST /api/v1/dead-letters/{dead_letter_id}/replay",
        "DELETE /api/v1/dead-letters/{dead_letter_id}",
        "PATCH /api/v1/runs/{run_id}/tasks/{task_id}/timer",
        "DELETE /api/v1/runs/{run_id}/tasks/{task_id}/timer",
    ),
    # metadata
    *_rules("metadata", Role.VIEWER, "GET /api/v1/executions", "GET /api/v1/executions/{rest...}"),
    # notification
    *_rules("notification", Role.VIEWER, "GET /api/v1/subscriptions", "GET /api/v1/deliveries"),
    *_rules(
        "notification",
        Role.DEVELOPER,
        "POST /api/v1/subscriptions",
        "DELETE /api/v1/subscriptions/{subscription_id}",
    ),
    *_rules(
        "notification",
        Role.VIEWER,
        "GET /api/v1/subscriptions/{subscription_id}",
        "GET /api/v1/deliveries/{delivery_id}",
    ),
    *_rules(
        "notification",
        Role.DEVELOPER,
        "PATCH /api/v1/subscriptions/{subscription_id}",
        "POST /api/v1/subscriptions/{subscription_id}/rotate-secret",
        "POST /api/v1/subscriptions/{subscription_id}/test",
        "POST /api/v1/deliveries/{delivery_id}/redeliver",
    ),
    *_rules("notification", Role.OPERATOR, "GET /api/v1/parked-events/notification"),
    # artifact
    *_rules(
        "artifact",
        Role.VIEWER,
        "GET /api/v1/artifacts",
        "GET /api/v1/artifacts/{artifact_id}",
        "GET /api/v1/artifacts/{artifact_id}/content",
        "GET /api/v1/artifacts/{artifact_id}/url",
    ),
    *_rules(
        "artifact",
        Role.DEVELOPER,
        "POST /api/v1/artifacts",
        "POST /api/v1/artifacts/uploads",
        "POST /api/v1/artifacts/{artifact_id}/complete",
        "DELETE /api/v1/artifacts/{artifact_id}",
    ),
    # Pre-signed S3 URLs through the gateway: the signature is the authorization; the
    # gateway forwards only requests that carry one, to the artifact bucket only.
    *_rules(
        "artifact",
        PUBLIC,
        "GET /interlock-artifacts/{object_key...}",
        "PUT /interlock-artifacts/{object_key...}",
    ),
    # Readiness and API documentation: public; they describe the platform, not a tenant.
    *(Rule("GET", f"/health/{service}", service, PUBLIC) for service in SERVICE_NAMES),
    *(Rule("GET", f"/api/v1/{service}/openapi.json", service, PUBLIC) for service in SERVICE_NAMES),
    Rule("GET", "/api/docs", "gateway", PUBLIC),
)
"""Every route behind the gateway and the least role that may call it."""


def find_rule(method: str, path: str) -> Rule | None:
    """The rule covering ``method`` on ``path`` (query string allowed), or ``None`` (deny).

    A ``HEAD`` request is matched as ``GET``.
    """
    path = path.split("?", 1)[0]
    method = "GET" if method == "HEAD" else method
    matcher = _MATCHERS.get(method)
    if matcher is None:
        return None
    pattern, rules = matcher
    match = pattern.fullmatch(path)
    if match is None or match.lastgroup is None:
        return None
    return rules[int(match.lastgroup[1:])]


def _matchers() -> dict[str, tuple[re.Pattern[str], list[Rule]]]:
    # One alternation per method, first rule first: a single regex call per request
    # instead of one per rule (the authorizer's hot path).
    by_method: dict[str, list[Rule]] = {}
    for rule in PERMISSIONS:
        by_method.setdefault(rule.method, []).append(rule)
    return {
        method: (
            re.compile(
                "|".join(f"(?P<r{i}>{rule.pattern.pattern})" for i, rule in enumerate(rules))
            ),
            rules,
        )
        for method, rules in by_method.items()
    }


_MATCHERS = _matchers()


def is_allowed(rule: Rule, roles: Iterable[str]) -> bool:
    """Whether a caller holding ``roles`` may use ``rule``'s route."""
    return rule.role is None or rule.role in implied_roles(roles)


def permissions_markdown() -> str:
    """The permission table as Markdown (the body of ``docs/permissions.md``)."""
    lines = [
        "# Permissions",
        "",
        "GENERATED from `libs/common/src/interlock/common/permissions.py` by",
        "`python -m interlock.common.permissions > docs/permissions.md`; a test keeps it in step.",
        "",
        "Roles nest: `admin` ⊃ `operator` ⊃ `developer` ⊃ `viewer`. Each route names the",
        "least role that may call it; `public` routes need no token. A route missing from",
        "this table is denied by the gateway. Each service's readiness, its OpenAPI document",
        "and the API reference page (`/api/docs`, served by the gateway itself) are public:",
        "they describe the platform and hold no tenant's data.",
        "",
        "| service | method | path | least role |",
        "|---|---|---|---|",
    ]
    for rule in PERMISSIONS:
        role = "public" if rule.role is None else rule.role.value
        lines.append(f"| {rule.service} | {rule.method} | `{rule.path}` | {role} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(permissions_markdown(), end="")  # noqa: T201 - the module's command-line output
