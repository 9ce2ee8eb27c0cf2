from pathlib import Path

import pytest

from interlock.common.permissions import (
    PERMISSIONS,
    Role,
    find_rule,
    implied_roles,
    is_allowed,
    parse_roles,
    permissions_markdown,
)

REPO = Path(__file__).resolve().parents[4]


def test_docs_match_the_table() -> None:
    assert (REPO / "docs" / "permissions.md").read_text() == permissions_markdown(), (
        "docs/permissions.md is stale: run "
        "`python -m interlock.common.permissions > docs/permissions.md`"
    )


def test_roles_nest() -> None:
    assert implied_roles(["operator"]) == {Role.VIEWER, Role.DEVELOPER, Role.OPERATOR}
    assert implied_roles(["viewer", "admin"]) == set(Role)
    assert implied_roles(["nobody"]) == frozenset()
    assert implied_roles([]) == frozenset()


def test_parse_roles_rejects_unknown_names() -> None:
    assert parse_roles(["viewer", "admin", "viewer"]) == [Role.VIEWER, Role.ADMIN]
    with pytest.raises(ValueError, match="root"):
        parse_roles(["root"])


@pytest.mark.parametrize(
    ("method", "path", "service", "role"),
    [
        ("POST", "/api/v1/auth/login", "iam", None),
        ("GET", "/.well-known/jwks.json", "iam", None),
        ("GET", "/api/v1/auth/me", "iam", Role.VIEWER),
        ("POST", "/api/v1/users", "iam", Role.ADMIN),
        ("GET", "/api/v1/users/42?x=1", "iam", Role.ADMIN),
        ("GET", "/api/v1/workflows/schema", "workflow", Role.VIEWER),
        ("PUT", "/api/v1/workflows/etl", "workflow", Role.DEVELOPER),
        ("GET", "/api/v1/workflows/etl/versions/3", "workflow", Role.VIEWER),
        ("POST", "/api/v1/workflows/etl/runs", "workflow", Role.DEVELOPER),
        ("HEAD", "/api/v1/runs", "workflow", Role.VIEWER),
        ("POST", "/api/v1/runs/r1/cancel", "workflow", Role.OPERATOR),
        ("PATCH", "/api/v1/runs/r1/tasks/t1/timer", "scheduler", Role.OPERATOR),
        ("DELETE", "/api/v1/dead-letters/9", "scheduler", Role.OPERATOR),
        ("GET", "/api/v1/executions/r1/attempts/2/logs", "metadata", Role.VIEWER),
        ("DELETE", "/api/v1/subscriptions/s1", "notification", Role.DEVELOPER),
        ("GET", "/api/v1/artifacts/a1/content", "artifact", Role.VIEWER),
        ("POST", "/api/v1/artifacts", "artifact", Role.DEVELOPER),
    ],
)
def test_routes_find_their_rule(method: str, path: str, service: str, role: Role | None) -> None:
    rule = find_rule(method, path)
    assert rule is not None
    assert (rule.service, rule.role) == (service, role)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/unknown"),
        ("POST", "/api/v1/runs"),
        ("GET", "/api/v1/runs/r1/cancel"),
        ("POST", "/api/v1/runs/r1/cancel/extra"),
        ("GET", "/api/v1/runs//"),
        ("PATCH", "/api/v1/runs/r1/tasks/t1/timer/x"),
        ("GET", "/api/v1/executionsX"),
        ("POST", "/api/v1/artifacts/a1"),
    ],
)
def test_unknown_routes_have_no_rule(method: str, path: str) -> None:
    assert find_rule(method, path) is None


def test_viewer_reads_but_does_not_start_runs() -> None:
    read, start = find_rule("GET", "/api/v1/runs/r1"), find_rule("POST", "/api/v1/workflows/w/runs")
    assert read is not None and start is not None
    assert is_allowed(read, ["viewer"])
    assert not is_allowed(start, ["viewer"])
    assert is_allowed(start, ["developer"])
    assert not is_allowed(start, [])


def test_every_rule_is_unique() -> None:
    keys = [(rule.method, rule.path) for rule in PERMISSIONS]
    assert len(keys) == len(set(keys))


def test_lookup_agrees_with_the_first_matching_rule() -> None:
    for rule in PERMISSIONS:
        for filler in ("x1", "a-b.c"):
            path = rule.path.replace("{rest...}", f"{filler}/more")
            path = "/".join(filler if part.startswith("{") else part for part in path.split("/"))
            first = next(r for r in PERMISSIONS if r.matches(rule.method, path))
            assert find_rule(rule.method, path) is first
