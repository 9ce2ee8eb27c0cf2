"""Interlock metadata service.

Execution documents, attempts and logs in MongoDB; search, details and log streaming.
"""

from interlock.metadata.app import create_app
from interlock.metadata.settings import MetadataSettings

__all__ = ["MetadataSettings", "create_app"]
