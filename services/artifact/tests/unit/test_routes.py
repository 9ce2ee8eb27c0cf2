"""Every REST route of the service is in the gateway's permission table (and vice versa)."""

import re

from interlock.artifact import ArtifactSettings, create_app
from interlock.common.permissions import PERMISSIONS


def test_the_routes_and_the_permission_table_agree() -> None:
    app = create_app(ArtifactSettings())  # building the app opens nothing
    served = {
        (method.upper(), re.sub(r"\{[a-z_]+\}", "{}", path))
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }
    assert app.openapi_url is not None
    served.add(("GET", app.openapi_url))
    table = {
        (rule.method, re.sub(r"\{[a-z_]+\}", "{}", rule.path))
        for rule in PERMISSIONS
        # Pre-signed object URLs: the gateway forwards them to S3, not to the service.
        if rule.service == "artifact" and not rule.path.startswith("/interlock-artifacts/")
    }
    assert served == table
