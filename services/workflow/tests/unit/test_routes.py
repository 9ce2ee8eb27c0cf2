"""Every REST route of the service is in the gateway's permission table (and vice versa)."""

import re

from interlock.common.permissions import PERMISSIONS
from interlock.workflow import WorkflowSettings, create_app
from interlock.workflow.domain import ControlAction


def served_routes() -> set[tuple[str, str]]:
    app = create_app(WorkflowSettings())  # building the app opens nothing
    routes = {("GET", app.openapi_url)}
    for path, operations in app.openapi()["paths"].items():
        paths = [path]
        if "{action}" in path:
            paths = [path.replace("{action}", action.value) for action in ControlAction]
        for concrete in paths:
            for method in operations:
                routes.add((method.upper(), re.sub(r"\{[a-z_]+\}", "{}", concrete)))
    return routes


def test_the_routes_and_the_permission_table_agree() -> None:
    table = {
        (rule.method, re.sub(r"\{[a-z_]+\}", "{}", rule.path))
        for rule in PERMISSIONS
        if rule.service == "workflow"
    }
    assert served_routes() == table
