"""Every REST route of the service is in the gateway's permission table (and vice versa)."""

import re

from interlock.common.permissions import PERMISSIONS
from interlock.notification import NotificationSettings, create_app


def served_routes() -> set[tuple[str, str]]:
    app = create_app(NotificationSettings())  # building the app opens nothing
    assert app.openapi_url is not None
    routes = {("GET", app.openapi_url)}
    for path, operations in app.openapi()["paths"].items():
        for method in operations:
            routes.add((method.upper(), re.sub(r"\{[a-z_]+\}", "{}", path)))
    return routes


def test_the_routes_and_the_permission_table_agree() -> None:
    table = {
        (rule.method, re.sub(r"\{[a-z_]+\}", "{}", rule.path))
        for rule in PERMISSIONS
        if rule.service == "notification"
    }
    assert served_routes() == table
