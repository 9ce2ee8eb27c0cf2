"""Interlock scheduler service.

Per-run task state, durable timers, retries and dead letters; publishes task.scheduled and run
outcomes.
"""

from interlock.scheduler.app import create_app
from interlock.scheduler.settings import SchedulerSettings

__all__ = ["SchedulerSettings", "create_app"]
