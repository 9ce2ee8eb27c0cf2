"""IAM's errors carry their problem and gRPC hints; only the adapters speak gRPC."""

import ast
from pathlib import Path

import grpc
import pytest

from interlock.common.errors import InterlockError, grpc_code_name
from interlock.common.problems import problem_for
from interlock.iam import errors
from interlock.iam.errors import Conflict, Forbidden, IamError, LockedOut, NotFound, Unauthenticated

PACKAGE = Path(errors.__file__).parent
WITHOUT_GRPC = [
    "errors.py",
    "store.py",
    "accounts.py",
    "credentials.py",
    *(f"domain/{p.name}" for p in (PACKAGE / "domain").glob("*.py")),
]


@pytest.mark.parametrize("module", WITHOUT_GRPC)
def test_the_domain_and_store_do_not_import_grpc(module: str) -> None:
    tree = ast.parse((PACKAGE / module).read_text())
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {name for name in imported if name.split(".")[0] == "grpc"}


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (IamError("unknown role"), 400, grpc.StatusCode.INVALID_ARGUMENT),
        (Unauthenticated("expired"), 401, grpc.StatusCode.UNAUTHENTICATED),
        (Forbidden("no"), 403, grpc.StatusCode.PERMISSION_DENIED),
        (NotFound("no user"), 404, grpc.StatusCode.NOT_FOUND),
        (Conflict("taken"), 409, grpc.StatusCode.ALREADY_EXISTS),
        (LockedOut(2.5), 429, grpc.StatusCode.RESOURCE_EXHAUSTED),
    ],
)
def test_each_error_maps_to_a_problem_and_a_grpc_status(
    error: InterlockError, status: int, code: grpc.StatusCode
) -> None:
    problem = problem_for(error)
    assert problem.status == status
    assert problem.detail == str(error)
    assert grpc.StatusCode[grpc_code_name(error)] is code


def test_a_lockout_says_when_to_try_again() -> None:
    assert problem_for(LockedOut(2.5)).to_dict()["retry_after_s"] == 3
