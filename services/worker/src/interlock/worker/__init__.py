"""Interlock worker service.

Runs tasks through pluggable executors and reports task.completed / task.failed.
User code imports :mod:`interlock.worker.sdk`; executor plugins implement
:class:`interlock.worker.executors.Executor`.
"""

from interlock.worker.app import create_app
from interlock.worker.executors import Executor, load_executors
from interlock.worker.runtime import Worker
from interlock.worker.settings import WorkerSettings

__all__ = ["Executor", "Worker", "WorkerSettings", "create_app", "load_executors"]
