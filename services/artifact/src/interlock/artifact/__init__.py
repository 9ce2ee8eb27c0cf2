"""Interlock artifact service.

Files tasks produce: records in PostgreSQL, bytes in S3, pre-signed URLs.
"""

from interlock.artifact.app import create_app
from interlock.artifact.settings import ArtifactSettings

__all__ = ["ArtifactSettings", "create_app"]
