"""Interlock iam service.

Users, tenants, roles, API keys and signing keys; token validation and the gateway's external
authorization.
"""

from interlock.iam.app import create_app
from interlock.iam.settings import IamSettings

__all__ = ["IamSettings", "create_app"]
