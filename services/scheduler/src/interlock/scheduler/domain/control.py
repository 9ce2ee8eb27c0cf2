"""Run control requests (``workflow.control``) mapped onto the run engine."""

from __future__ import annotations

from datetime import datetime

from interlock.events.v1 import workflow_pb2
from interlock.scheduler.domain.admission import is_limited
from interlock.scheduler.domain.run import RunState


def apply_control(run: RunState, control: workflow_pb2.RunControl, now: datetime) -> None:
    """Apply a cancel, pause, resume or retry request to ``run``."""
    action = control.action
    if action == workflow_pb2.RunControl.ACTION_CANCEL:
        run.cancel(control.reason, control.requested_by, now)
    elif action == workflow_pb2.RunControl.ACTION_PAUSE:
        run.pause(now)
    elif action == workflow_pb2.RunControl.ACTION_RESUME:
        run.resume(now)
    elif action == workflow_pb2.RunControl.ACTION_RETRY:
        run.retry(now, limited=is_limited(run.definition))
