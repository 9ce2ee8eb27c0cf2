"""Interlock workflow service.

Workflow definitions and versions, runs and run control; publishes workflow.started.
"""

from interlock.workflow.app import create_app
from interlock.workflow.settings import WorkflowSettings

__all__ = ["WorkflowSettings", "create_app"]
