"""The worker at run time (fetch, dispatch, execute, report, commit), split by role."""

from interlock.worker.runtime._worker import Worker

__all__ = ["Worker"]
