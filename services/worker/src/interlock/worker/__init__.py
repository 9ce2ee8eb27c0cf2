"""Interlock worker service.

Runs tasks through pluggable executors and reports task.completed / task.failed.
"""

from interlock.worker.app import create_app
from interlock.worker.settings import WorkerSettings

__all__ = ["WorkerSettings", "create_app"]
